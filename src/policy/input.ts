/**
 * Engine input read from a file (policy test fixtures, `ct policy explain --evidence`, the
 * deployments export): `{evidence, manifest?, host, findings?, now?}`. Checked field by field so
 * that a broken fixture is reported at its file:line instead of surfacing as a wrong decision.
 */
import type { Evidence, Finding } from '../verify/evidence.js';
import type { PolicyIssue } from './issues.js';
import type { ParsedSource, PathSegment } from './source.js';
import type { BundleFacts, HostFacts, PolicyInput } from './types.js';
import { canonicalClaimName } from '../verify/sigstore/claims.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- walking untrusted JSON */
const isObj = (v: unknown): v is Record<string, any> => !!v && typeof v === 'object' && !Array.isArray(v);

/**
 * Issues reported per input at most: an export of millions of empty attestations made millions of
 * them (with their locations), and ran out of memory instead of saying the first.
 */
const MAX_INPUT_ISSUES = 20;

/** Checks `value` (at `base` inside `src`) as a PolicyInput; returns it or the issues (the first MAX_INPUT_ISSUES). */
export function readPolicyInput(value: unknown, src: ParsedSource, base: PathSegment[] = []): { input?: PolicyInput; issues: PolicyIssue[] } {
  const issues: PolicyIssue[] = [];
  const bad = (path: PathSegment[], message: string) => issues.length < MAX_INPUT_ISSUES && issues.push({ ...src.locate([...base, ...path]), severity: 'error', kind: 'input', message: `${[...base, ...path].join('.') || '(top level)'}: ${message}` });
  if (!isObj(value)) {
    bad([], 'engine input must be a mapping with evidence, manifest, host');
    return { issues };
  }
  const ev = value.evidence;
  if (!isObj(ev)) bad(['evidence'], 'missing or not a mapping');
  else {
    if (typeof ev.imageDigest !== 'string') bad(['evidence', 'imageDigest'], 'must be a string');
    if (!Array.isArray(ev.attestations)) bad(['evidence', 'attestations'], 'must be a list');
    else
      ev.attestations.forEach((a: unknown, i: number) => {
        const p: PathSegment[] = ['evidence', 'attestations', i];
        if (!isObj(a)) return bad(p, 'must be a mapping');
        if (typeof a.predicateType !== 'string') bad([...p, 'predicateType'], 'must be a string');
        if (!Array.isArray(a.signers) || a.signers.some((s: unknown) => !isObj(s) || (s.kind !== 'key' && s.kind !== 'keyless'))) bad([...p, 'signers'], 'must be a list of {kind: key|keyless, …}');
        if (a.logOperators !== undefined && (!Array.isArray(a.logOperators) || a.logOperators.some((o: unknown) => typeof o !== 'string'))) bad([...p, 'logOperators'], 'must be a list of strings');
        if (a.subjects !== undefined && !Array.isArray(a.subjects)) bad([...p, 'subjects'], 'must be a list');
        if (Array.isArray(a.signers)) a.signers.forEach((s: any, j: number) => {
          const twice = isObj(s?.claims) ? repeatedClaim(s.claims) : undefined;
          if (twice) bad([...p, 'signers', j, 'claims'], `names claim ${twice} twice (aliases and capitalisations are one name)`);
        });
      });
    if (ev.coveredFiles !== undefined && !isObj(ev.coveredFiles)) bad(['evidence', 'coveredFiles'], 'must be a mapping of file → digest');
    if (ev.fetchedReference !== undefined && typeof ev.fetchedReference !== 'string') bad(['evidence', 'fetchedReference'], 'must be a string');
  }
  if (value.manifest !== undefined && !isObj(value.manifest)) bad(['manifest'], 'must be a mapping');
  const host = value.host ?? value.hostFacts;
  if (!isObj(host) || typeof host.environment !== 'string') bad([value.host ? 'host' : 'hostFacts'], 'must be a mapping with at least environment');
  if (value.findings !== undefined && (!Array.isArray(value.findings) || value.findings.some((f: unknown) => !isObj(f) || typeof f.code !== 'string' || typeof f.integrity !== 'boolean'))) bad(['findings'], 'must be a list of {code, message, integrity}');
  if (value.now !== undefined && (typeof value.now !== 'string' || Number.isNaN(Date.parse(value.now)))) bad(['now'], 'must be an RFC 3339 date-time');
  if (value.verifiedIn !== undefined && (!Array.isArray(value.verifiedIn) || value.verifiedIn.length > 64 || value.verifiedIn.some((e: unknown) => typeof e !== 'string'))) bad(['verifiedIn'], 'must be a list of environment names');
  if (value.mode !== undefined && !['strict', 'permissive', 'audit'].includes(value.mode)) bad(['mode'], 'must be strict, permissive or audit');
  if (issues.length) return { issues };

  const evidence: Evidence = {
    ...ev,
    attestations: ev.attestations.map((a: any) => ({ digest: '', source: 'vcs', subjects: [], logEntries: [], logOperators: [], predicate: null, ...a, signers: a.signers.map(canonicalClaims) })),
  } as Evidence;
  const input: PolicyInput = {
    evidence,
    manifest: (value.manifest ?? {}) as BundleFacts,
    host: host as HostFacts,
    findings: (value.findings ?? []).map((f: any) => ({ message: '', ...f })) as Finding[],
    now: value.now !== undefined ? Date.parse(value.now) : undefined,
    mode: value.mode,
    ...(value.verifiedIn ? { verifiedIn: value.verifiedIn as string[] } : {}),
  };
  return { input, issues };
}

/**
 * A hand-written signer's claims under the names the verifier reports (policies resolve theirs the
 * same way: `sourceRepositoryURI` is `sourceRepositoryUri`); names that are no claim are kept as written.
 */
function canonicalClaims(s: any): any {
  if (!isObj(s.claims)) return s;
  const claims = new Map<string, unknown>();
  for (const [k, v] of Object.entries(s.claims as Record<string, unknown>)) {
    // A name that is no claim the verifier reports is kept as written: no policy can name it either.
    const name = canonicalClaimName(k) ?? k;
    if (!claims.has(name)) claims.set(name, v);
  }
  // fromEntries defines own properties (a `__proto__` key stays data).
  return { ...s, claims: Object.fromEntries(claims) };
}

/** The canonical name of a claim written twice (`ref` and `sourceRepositoryRef`), if any. */
function repeatedClaim(claims: Record<string, unknown>): string | undefined {
  const seen = new Set<string>();
  for (const k of Object.keys(claims)) {
    const name = canonicalClaimName(k);
    if (name === undefined) continue;
    if (seen.has(name)) return name;
    seen.add(name);
  }
  return undefined;
}
