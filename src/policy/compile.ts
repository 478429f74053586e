/**
 * Turns one parsed, schema-valid policy document into a CompiledPolicy: regexes compiled (and
 * checked), signer specs normalised, every rule tied to its source location. Svalinn v1 JSON maps
 * onto the same model (match everything, key-id signers, upstream's "every attestation from an
 * allowed signer" rule).
 */
import { sha256Digest } from '../core/digest.js';
import type { IssueSink } from './issues.js';
import { validateAgainstSchema } from './schema.js';
import { parseSize } from '../bundle/runtime-extras.js';
import type { ParsedSource, PathSegment } from './source.js';
import { compileMatcher, type MatcherSpec } from './string-match.js';
import { CLAIM_ALIASES, CLAIM_OIDS, canonicalClaimName } from '../verify/sigstore/claims.js';
import type {
  AttestationRequirement,
  CompiledPolicy,
  Egress,
  MatchRules,
  Mode,
  PredicateCondition,
  PublishRule,
  RuntimeRules,
  SignerSpec,
  StringMatcher,
  ThresholdRule,
  ValueCondition,
} from './types.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- schema-validated documents are walked by field name */
type Raw = any;

export function compilePolicy(src: ParsedSource, text: string, defaultName: string, sink: IssueSink): CompiledPolicy | undefined {
  const value = src.value as Raw;
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    sink.error(src.locate([]), 'schema', 'a policy is a mapping with `apiVersion: cerro-torre.dev/v2` or `version: 1` (Svalinn)');
    return undefined;
  }
  const format = value.apiVersion !== undefined ? 'v2' : value.version !== undefined ? 'v1' : undefined;
  if (!format) {
    sink.error(src.locate([]), 'schema', 'not a policy: needs `apiVersion: cerro-torre.dev/v2` or `version: 1` (Svalinn v1)');
    return undefined;
  }
  const schemaIssues = validateAgainstSchema(format, src);
  if (schemaIssues.length) {
    sink.issues.push(...schemaIssues);
    return undefined;
  }
  const digest = sha256Digest(text);
  return format === 'v1' ? compileV1(src, value, defaultName, digest, sink) : compileV2(src, value, digest, sink);
}

function compileV1(src: ParsedSource, v: Raw, name: string, digest: string, _sink: IssueSink): CompiledPolicy {
  const at = src.locate([]);
  return {
    name,
    format: 'v1',
    mode: (v.mode ?? 'strict') as Mode,
    file: src.file,
    digest,
    match: { all: true, at },
    signers: (v.allowedSigners as string[]).map((keyId, i) => ({ label: keyId, keyId, at: src.locate(['allowedSigners', i]) })),
    onlyAllowedSigners: true,
    attestations: (v.requiredPredicates as string[]).map((predicateType, i) => ({ predicateType, conditions: [], at: src.locate(['requiredPredicates', i]) })),
    logQuorum: v.logQuorum,
    thresholds: [],
    notes: v.notes,
    at,
  };
}

function compileV2(src: ParsedSource, v: Raw, digest: string, sink: IssueSink): CompiledPolicy | undefined {
  const before = sink.issues.length;
  const at = src.locate([]);
  const matcher = (spec: MatcherSpec, path: PathSegment[], plain: 'exact' | 'glob'): StringMatcher | undefined => {
    const out = compileMatcher(spec, plain);
    if (out.error) sink.error(src.locate(path), out.error.kind, `${pathText(path)}: ${out.error.message}`);
    else if (out.unanchored) sink.warning(src.locate(path), 'unanchored-pattern', `${pathText(path)}: regular expression is not anchored with ^…$; it is matched as ^(?:…)$`);
    return out.matcher;
  };
  const matchers = (list: MatcherSpec[] | undefined, path: PathSegment[], plain: 'exact' | 'glob'): StringMatcher[] | undefined =>
    list?.map((s, i) => matcher(s, [...path, i], plain)).filter((m): m is StringMatcher => !!m);

  const m = v.match;
  const match: MatchRules = {
    all: m.all === true,
    environments: matchers(m.environments, ['match', 'environments'], 'glob'),
    registries: matchers(m.registries, ['match', 'registries'], 'glob'),
    sourceRepositories: matchers(m.sourceRepositories, ['match', 'sourceRepositories'], 'glob'),
    names: matchers(m.names, ['match', 'names'], 'glob'),
    at: src.locate(['match']),
  };
  if (match.all && Object.keys(m).length > 1) sink.error(match.at, 'conflict', 'match: `all: true` cannot be combined with other match fields');

  const signers = compileSigners(v.signers, ['signers'], src, sink, matcher);
  const attestations: AttestationRequirement[] = (v.attestations ?? []).map((a: Raw, i: number) => ({
    predicateType: a.predicateType,
    signers: a.signers ? compileSigners(a.signers, ['attestations', i, 'signers'], src, sink, matcher) : undefined,
    conditions: (a.conditions ?? []).map((c: Raw, j: number) => compileCondition(c, ['attestations', i, 'conditions', j], src, matcher)).filter(Boolean),
    at: src.locate(['attestations', i]),
  }));
  const seenTypes = new Map<string, number>();
  attestations.forEach((a, i) => {
    if (seenTypes.has(a.predicateType)) sink.error(a.at, 'conflict', `attestations[${i}]: predicate type ${a.predicateType} is already required by attestations[${seenTypes.get(a.predicateType)}]; merge the conditions`);
    seenTypes.set(a.predicateType, i);
  });
  const thresholds: ThresholdRule[] = (v.thresholds ?? []).map((t: Raw, i: number) => ({
    name: t.name,
    k: t.k,
    predicateType: t.predicateType,
    signers: compileSigners(t.signers, ['thresholds', i, 'signers'], src, sink, matcher),
    at: src.locate(['thresholds', i]),
  }));
  for (const t of thresholds) {
    const fixed = t.signers.every((s) => s.keyId !== undefined);
    if (fixed && new Set(t.signers.map((s) => s.keyId)).size < t.k) {
      sink.error(t.at, 'unreachable', `thresholds ${t.name}: k=${t.k} but only ${t.signers.length} distinct keys are listed; it can never be met`);
    }
  }
  let expires: CompiledPolicy['expires'];
  if (v.expires !== undefined) {
    const time = Date.parse(v.expires);
    if (Number.isNaN(time)) sink.error(src.locate(['expires']), 'schema', 'expires: not an RFC 3339 date-time');
    else expires = { time, text: v.expires, at: src.locate(['expires']) };
  }
  const runtime = v.runtime ? compileRuntime(v.runtime, src, sink) : undefined;
  if (sink.issues.slice(before).some((i) => i.severity === 'error')) return undefined;
  return {
    name: v.name,
    format: 'v2',
    mode: (v.mode ?? 'strict') as Mode,
    file: src.file,
    digest,
    match,
    signers,
    onlyAllowedSigners: false,
    attestations,
    logQuorum: v.logQuorum ?? 1,
    thresholds,
    runtime,
    ...(v.requireVerifiedIn ? { requireVerifiedIn: { environments: [...v.requireVerifiedIn] as string[], at: src.locate(['requireVerifiedIn']) } } : {}),
    expires,
    notes: v.notes,
    at,
  };
}

type MatcherFn = (spec: MatcherSpec, path: PathSegment[], plain: 'exact' | 'glob') => StringMatcher | undefined;

function compileSigners(list: Raw[], path: PathSegment[], src: ParsedSource, sink: IssueSink, matcher: MatcherFn): SignerSpec[] {
  const out: SignerSpec[] = [];
  list.forEach((s: Raw, i: number) => {
    const p = [...path, i];
    const at = src.locate(p);
    const kinds = [s.keyId !== undefined, s.role !== undefined, s.issuer !== undefined].filter(Boolean).length;
    if (kinds !== 1) {
      sink.error(at, 'schema', `${pathText(p)}: a signer is exactly one of keyId, role, or issuer+subject (keyless)`);
      return;
    }
    if (s.keyId) out.push({ label: s.name ?? s.keyId, keyId: s.keyId, at });
    else if (s.role) out.push({ label: s.name ?? `role:${s.role}`, role: s.role, at });
    else {
      const subject = matcher(s.subject, [...p, 'subject'], 'exact');
      // Claim names as the verifier reports them (aliases and other capitalisations resolved): a
      // name that never occurs would make the signer match nothing, silently.
      const claims: [string, StringMatcher][] = [];
      for (const [k, spec] of Object.entries((s.claims ?? {}) as Record<string, MatcherSpec>)) {
        const name = canonicalClaimName(k);
        if (name === undefined) {
          sink.error(src.locate([...p, 'claims', k]), 'schema', `${pathText([...p, 'claims', k])}: unknown certificate claim (Fulcio's names: ${Object.keys(CLAIM_OIDS).join(', ')}; or ${Object.keys(CLAIM_ALIASES).join(', ')})`);
          continue;
        }
        if (claims.some((c) => c[0] === name)) {
          sink.error(src.locate([...p, 'claims', k]), 'schema', `${pathText([...p, 'claims', k])}: claim ${name} is named twice`);
          continue;
        }
        const m = matcher(spec, [...p, 'claims', k], 'exact');
        if (m) claims.push([name, m]);
      }
      claims.sort((a, b) => (a[0] < b[0] ? -1 : 1));
      if (subject) out.push({ label: s.name ?? `${s.issuer} ${subject.source}`, issuer: s.issuer, subject, claims, at });
    }
  });
  return out;
}

function compileCondition(c: Raw, path: PathSegment[], src: ParsedSource, matcher: MatcherFn): PredicateCondition | undefined {
  let test: ValueCondition | undefined;
  if (c.equals !== undefined) test = { kind: 'equals', value: c.equals };
  else if (c.exists !== undefined) test = { kind: 'exists', value: c.exists };
  else {
    const key = ['exact', 'glob', 'regex', 'oneOf'].find((k) => c[k] !== undefined)!;
    const m = matcher({ [key]: c[key] } as MatcherSpec, [...path, key], 'exact');
    if (!m) return undefined;
    test = { kind: 'string', matcher: m };
  }
  return { path: String(c.path).split('.'), pathText: c.path, test, at: src.locate(path) };
}

function compileRuntime(r: Raw, src: ParsedSource, sink: IssueSink): RuntimeRules {
  const out: RuntimeRules = { allowPrivileged: r.allowPrivileged === true, at: src.locate(['runtime']) };
  if (r.seccomp) {
    out.seccomp = {
      level: r.seccomp.profile,
      allowNotify: r.seccomp.allowNotify === true,
      allowSpecAllow: r.seccomp.allowSpecAllow === true,
      extraSyscalls: new Set(r.seccomp.extraSyscalls ?? []),
      at: src.locate(['runtime', 'seccomp']),
    };
  }
  if (r.apparmor?.required) out.apparmor = { allowUnenforcedHost: r.apparmor.allowUnenforcedHost === true, at: src.locate(['runtime', 'apparmor']) };
  if (r.selinux?.required) out.selinux = { at: src.locate(['runtime', 'selinux']) };
  if (r.monitoring?.required) out.monitoring = { at: src.locate(['runtime', 'monitoring']) };
  if (r.capabilities) out.capabilities = { allowed: new Set((r.capabilities.allowed as string[]).map(normaliseCapability)), at: src.locate(['runtime', 'capabilities']) };
  if (r.nonRoot) out.nonRoot = src.locate(['runtime', 'nonRoot']);
  if (r.readOnlyRootfs) out.readOnlyRootfs = src.locate(['runtime', 'readOnlyRootfs']);
  if (r.resources) {
    out.resources = { at: src.locate(['runtime', 'resources']) };
    const memory = r.resources.memory === undefined ? undefined : parseSize(r.resources.memory);
    if (memory !== undefined) out.resources.memory = memory;
    if (typeof r.resources.cpus === 'number') out.resources.cpus = r.resources.cpus;
    if (typeof r.resources.pids === 'number') out.resources.pids = r.resources.pids;
  }
  if (r.network) {
    const publish: PublishRule[] = [];
    ((r.network.publish ?? []) as { ports: string; addresses?: string[]; protocols?: PublishRule['protocols'] }[]).forEach((p, i) => {
      const [from, to = from] = p.ports.split('-').map(Number);
      if (from >= 1 && to <= 65535 && from <= to) publish.push({ ports: { from, to }, ...(p.addresses ? { addresses: p.addresses } : {}), ...(p.protocols ? { protocols: p.protocols } : {}) });
      else sink.error(src.locate(['runtime', 'network', 'publish', i, 'ports']), 'schema', `runtime.network.publish[${i}].ports: ${p.ports} is not a range within 1-65535`);
    });
    out.network = { publish, ...(r.network.egress ? { egress: r.network.egress as Egress } : {}), at: src.locate(['runtime', 'network']) };
  }
  return out;
}

export function normaliseCapability(c: string): string {
  const u = String(c).toUpperCase();
  return u.startsWith('CAP_') ? u : `CAP_${u}`;
}

function pathText(path: PathSegment[]): string {
  return path.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('');
}
