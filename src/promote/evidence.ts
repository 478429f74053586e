/**
 * What a reviewer of a promotion needs, computed from verified facts only: the candidate bundle
 * is verified with the trust material, the SBOM and source commit come from its verified
 * attestations, the runtime profiles from files its signatures cover, and the decision from the
 * same policy engine (and rendering) `ct policy explain` uses. Differences are taken against the
 * bundle that runs now (the one the desired state pins today), verified the same way.
 */
import { evidenceFromCtp } from '../policy/ctp-evidence.js';
import { withPolicyKeyless } from '../policy/keyless-trust.js';
import { readBundleFacts } from '../policy/bundle-facts.js';
import { evaluate } from '../policy/evaluate.js';
import { renderDecision } from '../policy/explain.js';
import type { PolicySet } from '../policy/policy-set.js';
import type { BundleFacts, HostFacts } from '../policy/types.js';
import type { Evidence, VerifiedAttestation } from '../verify/evidence.js';
import type { TrustMaterial } from '../verify/report.js';
import { PREDICATE_SLSA_PROVENANCE_V1, PREDICATE_SPDX_DOCUMENT } from '../attest/statement.js';
import { CtError } from '../core/errors.js';

export interface SignerSummary { kind: 'key' | 'keyless'; identity: string; issuer?: string; workflow?: string; roles?: string[] }
export interface LogSummary { operator: string; entries: { logId: string; logIndex: number; kind: 'vcs' | 'rekor' }[] }
export interface PackageChange { name: string; from: string; to: string }
export interface SetDiff { added: string[]; removed: string[] }

export interface PromotionEvidence {
  bundle: { name?: string; version?: string; imageDigest: string; bundleDigest?: string };
  /** Integrity findings of the candidate (an empty list when it verified). */
  integrity: { code: string; message: string }[];
  signers: SignerSummary[];
  logs: LogSummary[];
  source?: { repository?: string; commit: string };
  /** Against the bundle that runs now; `baseline` says what that was, or why nothing was compared. */
  baseline: { bundle?: string; compared: boolean; reason?: string };
  sbom: { added: string[]; removed: string[]; changed: PackageChange[] };
  seccomp: SetDiff;
  apparmor: SetDiff;
  policy: { environment: string; allow: boolean; policies: string[]; explanation: string; firstViolation?: string };
  /** Environments where deploy VSAs (verified by the caller) show this very bundle ran. */
  verifiedIn?: string[];
}

export interface EvidenceRequest {
  /** The candidate .ctp (what the promotion pins). */
  candidate: string;
  /** The .ctp that runs now, if it could be had (fetched from the registry, or given). */
  current?: { path: string; reference: string };
  /** Why there is no current bundle (a new app, or fetching failed), shown to the reviewer. */
  currentMissing?: string;
  trust: TrustMaterial;
  policies: PolicySet;
  environment: string;
  host?: Partial<HostFacts>;
  now?: number;
  /** Environments where verified deploy VSAs show this bundle ran (the policy input `verifiedIn`). */
  verifiedIn?: string[];
}

const MAX_LIST = 200;

function signersOf(atts: readonly VerifiedAttestation[]): SignerSummary[] {
  const out = new Map<string, SignerSummary>();
  for (const a of atts) {
    for (const s of a.signers) {
      const sum: SignerSummary = s.kind === 'key'
        ? { kind: 'key', identity: s.keyId ?? '?', ...(s.roles?.length ? { roles: [...s.roles].sort() } : {}) }
        : { kind: 'keyless', identity: s.subject ?? '?', ...(s.issuer ? { issuer: s.issuer } : {}), ...(workflowOf(s.claims) ? { workflow: workflowOf(s.claims)! } : {}) };
      out.set(`${sum.kind}|${sum.identity}|${sum.issuer ?? ''}`, sum);
    }
  }
  return [...out.values()].sort((a, b) => a.identity.localeCompare(b.identity));
}

function workflowOf(claims: Record<string, string> | undefined): string | undefined {
  return claims?.buildConfigUri ?? claims?.githubWorkflowRef ?? claims?.buildSignerUri;
}

function logsOf(atts: readonly VerifiedAttestation[]): LogSummary[] {
  const by = new Map<string, Map<string, LogSummary['entries'][number]>>();
  for (const a of atts) {
    for (const e of a.logEntries) {
      const m = by.get(e.operator) ?? new Map();
      m.set(`${e.logId}#${e.logIndex}`, { logId: e.logId, logIndex: e.logIndex, kind: e.kind });
      by.set(e.operator, m);
    }
  }
  return [...by.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([operator, m]) => ({ operator, entries: [...m.values()].sort((x, y) => x.logId.localeCompare(y.logId) || x.logIndex - y.logIndex) }));
}

/* eslint-disable @typescript-eslint/no-explicit-any -- verified predicates are walked by field name */
function sourceOf(atts: readonly VerifiedAttestation[]): PromotionEvidence['source'] {
  for (const a of atts) {
    for (const s of a.signers) {
      const c = s.claims?.sourceRepositoryDigest;
      if (s.kind === 'keyless' && c) return { commit: c, ...(s.claims?.sourceRepositoryUri ? { repository: s.claims.sourceRepositoryUri } : {}) };
    }
  }
  for (const a of atts) {
    if (a.predicateType !== PREDICATE_SLSA_PROVENANCE_V1) continue;
    const deps = (a.predicate as any)?.buildDefinition?.resolvedDependencies;
    for (const d of Array.isArray(deps) ? deps : []) {
      const commit = d?.digest?.gitCommit ?? d?.digest?.sha1;
      if (typeof commit === 'string' && /^[0-9a-f]{7,64}$/.test(commit)) return { commit, ...(typeof d.uri === 'string' ? { repository: d.uri.slice(0, 512) } : {}) };
    }
  }
  return undefined;
}

/** name → versions (sorted, joined) of the packages of the verified SPDX SBOM(s). */
function packagesOf(ev: Evidence | undefined): Map<string, string> {
  const out = new Map<string, Set<string>>();
  for (const a of ev?.attestations ?? []) {
    if (a.predicateType !== PREDICATE_SPDX_DOCUMENT) continue;
    const pkgs = (a.predicate as any)?.packages;
    for (const p of Array.isArray(pkgs) ? pkgs.slice(0, 100_000) : []) {
      if (typeof p?.name !== 'string' || p.name.length > 512) continue;
      const set = out.get(p.name) ?? new Set<string>();
      set.add(typeof p.versionInfo === 'string' ? p.versionInfo.slice(0, 128) : '');
      out.set(p.name, set);
    }
  }
  return new Map([...out].map(([n, v]) => [n, [...v].sort().join(', ')]));
}
/* eslint-enable @typescript-eslint/no-explicit-any */

export function sbomDiff(before: Map<string, string>, after: Map<string, string>): PromotionEvidence['sbom'] {
  const added = [...after.keys()].filter((n) => !before.has(n)).sort().map((n) => (after.get(n) ? `${n} ${after.get(n)}` : n));
  const removed = [...before.keys()].filter((n) => !after.has(n)).sort().map((n) => (before.get(n) ? `${n} ${before.get(n)}` : n));
  const changed = [...after.keys()].filter((n) => before.has(n) && before.get(n) !== after.get(n)).sort().map((n) => ({ name: n, from: before.get(n)!, to: after.get(n)! }));
  return { added, removed, changed };
}

/** Syscalls a seccomp profile lets through: names of ALLOW/LOG rules (the default action apart). */
export function allowedSyscalls(profile: unknown): Set<string> {
  const out = new Set<string>();
  const rules = (profile as { syscalls?: unknown } | undefined)?.syscalls;
  for (const r of Array.isArray(rules) ? rules : []) {
    const { names, action } = (r ?? {}) as { names?: unknown; action?: unknown };
    if (action !== 'SCMP_ACT_ALLOW' && action !== 'SCMP_ACT_LOG') continue;
    for (const n of Array.isArray(names) ? names : []) if (typeof n === 'string' && n.length <= 64) out.add(n);
  }
  return out;
}

/** AppArmor rules as lines (comments and blank lines dropped), for a line-level difference. */
export function apparmorRules(text: string | undefined): Set<string> {
  const out = new Set<string>();
  for (const raw of (text ?? '').split('\n').slice(0, 20_000)) {
    const l = raw.trim();
    if (l && !l.startsWith('#')) out.add(l.slice(0, 300));
  }
  return out;
}

export function setDiff(before: Set<string>, after: Set<string>): SetDiff {
  return { added: [...after].filter((x) => !before.has(x)).sort().slice(0, MAX_LIST), removed: [...before].filter((x) => !after.has(x)).sort().slice(0, MAX_LIST) };
}

export async function promotionEvidence(req: EvidenceRequest): Promise<PromotionEvidence> {
  // The policies' keyless signers are the identities whose Sigstore attestations count.
  const trust = withPolicyKeyless(req.trust, req.policies, req.now);
  const at = req.now !== undefined ? { now: new Date(req.now) } : {};
  const cand = await evidenceFromCtp(req.candidate, trust, at);
  const facts = await readBundleFacts(req.candidate);
  let base: { evidence?: Evidence; facts?: BundleFacts } = {};
  let baseline: PromotionEvidence['baseline'] = { compared: false, reason: req.currentMissing ?? 'no bundle runs there yet' };
  if (req.current) {
    try {
      const cur = await evidenceFromCtp(req.current.path, trust, at);
      if (cur.findings.length) baseline = { bundle: req.current.reference, compared: false, reason: `the running bundle does not verify (${cur.findings[0].code})` };
      else {
        base = { evidence: cur.evidence, facts: await readBundleFacts(req.current.path) };
        baseline = { bundle: req.current.reference, compared: true };
      }
    } catch (e) {
      baseline = { bundle: req.current.reference, compared: false, reason: `the running bundle could not be read (${e instanceof CtError ? e.code : 'ERROR'})` };
    }
  }
  const host: HostFacts = { ...(req.host ?? {}), environment: req.environment };
  const decision = evaluate(req.policies, { evidence: cand.evidence, manifest: facts, host, findings: cand.findings, ...(req.now !== undefined ? { now: req.now } : {}), ...(req.verifiedIn ? { verifiedIn: req.verifiedIn } : {}) });
  const first = decision.violations[0];
  return {
    bundle: { name: facts.name, version: facts.version, imageDigest: cand.evidence.imageDigest, ...(cand.evidence.bundleDigest ? { bundleDigest: cand.evidence.bundleDigest } : {}) },
    integrity: cand.findings.map((f) => ({ code: f.code, message: f.message.slice(0, 300) })),
    signers: signersOf(cand.evidence.attestations),
    logs: logsOf(cand.evidence.attestations),
    ...(sourceOf(cand.evidence.attestations) ? { source: sourceOf(cand.evidence.attestations)! } : {}),
    baseline,
    sbom: baseline.compared ? sbomDiff(packagesOf(base.evidence), packagesOf(cand.evidence)) : sbomDiff(new Map(), packagesOf(cand.evidence)),
    seccomp: setDiff(baseline.compared ? allowedSyscalls(base.facts?.security?.seccomp) : new Set(), allowedSyscalls(facts.security?.seccomp)),
    apparmor: setDiff(baseline.compared ? apparmorRules(base.facts?.security?.apparmor) : new Set(), apparmorRules(facts.security?.apparmor)),
    policy: {
      environment: req.environment,
      allow: decision.allow,
      policies: decision.policies,
      explanation: renderDecision(decision),
      ...(first ? { firstViolation: `${first.code}: ${first.message}`.slice(0, 200) } : {}),
    },
    ...(req.verifiedIn?.length ? { verifiedIn: [...req.verifiedIn].sort().slice(0, 16) } : {}),
  };
}
