/**
 * The engine: verified evidence + the bundle's facts + the target host's facts → a decision.
 *
 * - Every policy whose `match` holds applies; none (or only expired ones) → NO_POLICY, deny.
 * - Each policy's violations deny when its mode (or the operator's override) is strict, and are
 *   warnings in permissive and audit mode: modes relax requirements only.
 * - Integrity failures (verifier findings with `integrity: true`, uncovered files) deny in every mode.
 * - Deterministic: policies in name order, rules in a fixed order, no clock unless `now` is absent.
 */
import type { VerifiedAttestation } from '../verify/evidence.js';
import { bound, conditionHolds, describeSigner, signedByAny, signerIdentity, signerMatches, sourceRepositories, valuesAt } from './facts.js';
import { isProvenancePredicate } from '../verify/signer-roles.js';
import type { PolicySet } from './policy-set.js';
import { checkRuntime, runtimeFiles } from './runtime-rules.js';
import type { CompiledPolicy, Decision, Mode, PolicyInput, Violation } from './types.js';

type Raw = Omit<Violation, 'policy' | 'mode'>;

const RANK: Record<Mode, number> = { audit: 0, permissive: 1, strict: 2 };

export function evaluate(set: PolicySet, input: PolicyInput): Decision {
  const now = input.now ?? Date.now();
  const violations: Violation[] = [];
  const warnings: Violation[] = [];

  for (const f of input.findings ?? []) {
    if (f.integrity) violations.push({ code: f.code, policy: '(verifier)', rule: 'verification', message: f.message, evidence: f.details ?? {}, mode: 'strict', integrity: true });
  }

  const applicable: CompiledPolicy[] = [];
  const expired: string[] = [];
  for (const p of set.candidates(input.host.environment)) {
    if (!matches(p, input)) continue;
    if (p.expires && now >= p.expires.time) expired.push(p.name);
    else applicable.push(p);
  }

  const effective = (p: CompiledPolicy): Mode => input.mode ?? p.mode;
  const decisionMode: Mode = input.mode ?? applicable.reduce<Mode>((m, p) => (RANK[p.mode] > RANK[m] ? p.mode : m), applicable.length ? 'audit' : 'strict');

  if (applicable.length === 0) {
    violations.push({
      code: 'NO_POLICY',
      policy: '(engine)',
      rule: 'match',
      message: expired.length ? `only expired policies match (${expired.join(', ')})` : `no policy matches this bundle in environment ${JSON.stringify(input.host.environment)}`,
      evidence: { environment: input.host.environment, expired, fetchedReference: input.evidence.fetchedReference ?? null },
      mode: 'strict',
    });
  }

  for (const p of applicable) {
    const mode = effective(p);
    for (const v of checkPolicy(p, input)) {
      const full: Violation = { ...v, policy: p.name, mode };
      if (v.integrity || mode === 'strict') violations.push(full);
      else warnings.push(full);
    }
  }

  // Verifier findings that are not integrity failures (e.g. a signature by an unknown key that was
  // left out of the evidence) are requirements: they follow the decision's mode.
  for (const f of input.findings ?? []) {
    if (f.integrity) continue;
    const v: Violation = { code: f.code, policy: '(verifier)', rule: 'verification', message: f.message, evidence: f.details ?? {}, mode: decisionMode };
    if (decisionMode === 'strict') violations.push(v);
    else warnings.push(v);
  }

  return {
    allow: violations.length === 0,
    mode: decisionMode,
    violations,
    warnings,
    policies: applicable.map((p) => p.name),
    policyDigest: set.digest,
  };
}

function accepted(p: CompiledPolicy, atts: readonly VerifiedAttestation[]): VerifiedAttestation[] {
  return atts.filter((a) => signedByAny(a, p.signers));
}

export function matches(p: CompiledPolicy, input: PolicyInput): boolean {
  const m = p.match;
  if (m.all) return true;
  if (m.environments && !m.environments.some((x) => x.test(input.host.environment))) return false;
  if (m.registries) {
    const ref = input.evidence.fetchedReference;
    if (!ref || !m.registries.some((x) => x.test(ref))) return false;
  }
  if (m.names) {
    // The bundle's own name counts only when a signer this policy accepts signed manifest.toml.
    const name = input.manifest.name;
    if (!name || !m.names.some((x) => x.test(name))) return false;
    const vouched = input.evidence.attestations.some((a) => a.subjects.some((s) => s.name === 'manifest.toml') && signedByAny(a, p.signers));
    if (!vouched) return false;
  }
  if (m.sourceRepositories) {
    const repos = sourceRepositories(accepted(p, input.evidence.attestations));
    let hit = false;
    for (const r of repos) if (m.sourceRepositories.some((x) => x.test(r))) hit = true;
    if (!hit) return false;
  }
  return true;
}

export function checkPolicy(p: CompiledPolicy, input: PolicyInput): Raw[] {
  const out: Raw[] = [];
  const atts = input.evidence.attestations;
  const ok = accepted(p, atts);

  if (p.onlyAllowedSigners) {
    // Svalinn v1: upstream's gate rejects any attestation from a signer outside allowedSigners.
    for (const a of atts) {
      if (!ok.includes(a)) out.push({ code: 'SIGNER_NOT_ALLOWED', rule: 'allowedSigners', message: `attestation ${a.predicateType} is signed by a key outside allowedSigners`, evidence: { predicateType: a.predicateType, signers: a.signers.map(describeSigner) }, at: p.signers[0]?.at });
    }
  }
  if (ok.length === 0) {
    const seen = atts.flatMap((a) => a.signers.map(describeSigner)).slice(0, 16);
    out.push({ code: 'SIGNER_NOT_ALLOWED', rule: 'signers', message: `no verified attestation is signed by an allowed signer; signed by: ${seen.map((s) => (s.kind === 'key' ? s.keyId : `${s.subject} (${s.issuer})`)).join('; ') || 'nobody'}`, evidence: { signers: seen, allowed: p.signers.map((s) => s.label) }, at: p.signers[0]?.at });
  } else {
    checkAttestations(p, atts, ok, out);
  }

  for (const t of p.thresholds) {
    const who = new Set<string>();
    for (const a of atts) {
      if (t.predicateType && a.predicateType !== t.predicateType) continue;
      for (const s of a.signers) if (t.signers.some((spec) => signerMatches(spec, s))) who.add(signerIdentity(s));
    }
    if (who.size < t.k) out.push({ code: 'THRESHOLD_NOT_MET', rule: `thresholds.${t.name}`, message: `${who.size} of ${t.k} required signers of ${t.name}`, evidence: { have: who.size, need: t.k, signers: [...who].sort().slice(0, 16) }, at: t.at });
  }

  if (p.requireVerifiedIn) {
    const have = new Set(input.verifiedIn ?? []);
    const missing = p.requireVerifiedIn.environments.filter((e) => !have.has(e));
    if (missing.length) out.push({ code: 'NOT_VERIFIED_IN', rule: 'requireVerifiedIn', message: `no verified deploy attestation (VSA) shows this bundle ran in ${missing.join(', ')}${have.size ? ` (it did in ${[...have].sort().join(', ')})` : ''}`, evidence: { missing, verifiedIn: [...have].sort().slice(0, 16) }, at: p.requireVerifiedIn.at });
  }
  const { missing, foreign } = coverageFor(p, input, ok);
  if (missing.length) {
    out.push({ code: 'UNCOVERED_FILE', rule: 'runtime', message: `not covered by a verified attestation: ${missing.join(', ')}`, evidence: { files: missing }, integrity: true, at: p.runtime?.at ?? p.at });
  }
  if (foreign.length) {
    const what = foreign[0] === 'manifest.toml' ? 'manifest.toml is signed by no signer this policy names' : 'not signed with manifest.toml by the signers this policy names';
    out.push({ code: 'SIGNER_NOT_ALLOWED', rule: 'signers', message: `${what}: ${foreign.slice(0, 8).join(', ')}`, evidence: { files: foreign.slice(0, 64) }, at: p.signers[0]?.at ?? p.at });
  }
  if (p.runtime) out.push(...checkRuntime(p.runtime, input.manifest, input.host));
  return out;
}

/**
 * Who signed what a host and the runtime rules take from the bundle (manifest.toml, the security/
 * files). `missing`: files the runtime rules read that no verified attestation covers (integrity).
 * `foreign`: files not vouched for by the signers this policy names. The verifier accepts a file
 * any trusted signer covers (a trust-store key, a keyless identity another environment's policy
 * trusts), so a policy asks more: manifest.toml must be signed, with the verified digest, by a
 * signer it names (its `signers`, or a provenance requirement's), and every attestation of theirs
 * that signs manifest.toml must sign every security/ file too. Then no other signer — another
 * environment's identity, an SBOM or scanner signer, one of a threshold's k — can add a seccomp or
 * AppArmor profile or a monitor to a bundle the builder signed without one, nor can two of the
 * builder's own signings (two builds of one version) be combined. Every producer (ct sign, ct
 * attest, the build action) signs the manifest with every covered file.
 * Evidence without a coverage list (a hand-written file) is not judged here.
 */
function coverageFor(p: CompiledPolicy, input: PolicyInput, ok: readonly VerifiedAttestation[]): { missing: string[]; foreign: string[] } {
  const covered = input.evidence.coveredFiles;
  if (!covered) return { missing: [], foreign: [] };
  const missing = p.runtime ? runtimeFiles(input.manifest).filter((f) => !(f in covered)) : [];
  // No signer of this policy's verified at all: SIGNER_NOT_ALLOWED says so already.
  if (ok.length === 0) return { missing, foreign: [] };
  const signs = (a: VerifiedAttestation, f: string) => a.subjects.some((sub) => sub.name === f && !!sub.digest?.sha256 && covered[f] === `sha256:${sub.digest.sha256}`);
  const builds = input.evidence.attestations.filter((a) => {
    // A requirement's signers build only through provenance: an SBOM or scanner signer is no builder.
    const specs = [...p.signers, ...(isProvenancePredicate(a.predicateType) ? p.attestations.filter((r) => r.signers && r.predicateType === a.predicateType).flatMap((r) => r.signers!) : [])];
    return signedByAny(a, specs) && signs(a, 'manifest.toml');
  });
  const security = Object.keys(covered).filter((f) => f.startsWith('security/')).sort();
  if (builds.length === 0) return { missing, foreign: ['manifest.toml', ...security] };
  return { missing, foreign: security.filter((f) => builds.some((a) => !signs(a, f))) };
}

function checkAttestations(p: CompiledPolicy, atts: readonly VerifiedAttestation[], ok: VerifiedAttestation[], out: Raw[]): void {
  const quorum = p.logQuorum;
  const coverage = (cands: VerifiedAttestation[], rule: string, at = p.at): boolean => {
    if (cands.some((a) => a.logOperators.length >= quorum)) return true;
    const best = Math.max(0, ...cands.map((a) => a.logOperators.length));
    out.push({ code: 'INSUFFICIENT_LOG_COVERAGE', rule, message: `logged by ${best} distinct log operator(s), policy needs ${quorum}`, evidence: { have: best, need: quorum, operators: [...new Set(cands.flatMap((a) => a.logOperators))].sort().slice(0, 16) }, at });
    return false;
  };
  if (p.attestations.length === 0) {
    coverage(ok, 'logQuorum');
    return;
  }
  p.attestations.forEach((req, i) => {
    const rule = `attestations[${i}]`;
    const signers = req.signers ?? p.signers;
    const ofType = atts.filter((a) => a.predicateType === req.predicateType);
    const cands = req.signers ? ofType.filter((a) => signedByAny(a, signers)) : ofType.filter((a) => ok.includes(a));
    if (cands.length === 0) {
      out.push({ code: 'MISSING_ATTESTATION', rule, message: `no verified ${req.predicateType} attestation from an allowed signer${ofType.length ? ` (${ofType.length} from other signers)` : ''}`, evidence: { predicateType: req.predicateType, otherSigners: ofType.flatMap((a) => a.signers.map(describeSigner)).slice(0, 8) }, at: req.at });
      return;
    }
    const passing = cands.filter((a) => req.conditions.every((c) => conditionHolds(c, a.predicate)));
    if (passing.length === 0) {
      const failed = req.conditions.find((c) => !conditionHolds(c, cands[0].predicate))!;
      const actual = valuesAt(cands[0].predicate, failed.path).slice(0, 4).map((v) => bound(typeof v === 'object' ? JSON.stringify(v) : v, 200));
      out.push({ code: 'PREDICATE_CONDITION_FAILED', rule: `${rule}.conditions`, message: `${req.predicateType}: ${failed.pathText} is ${actual.length ? JSON.stringify(actual) : 'absent'}, policy wants ${describeTest(failed.test)}`, evidence: { predicateType: req.predicateType, path: failed.pathText, actual }, at: failed.at });
      return;
    }
    coverage(passing, rule, req.at);
  });
}

function describeTest(t: CompiledPolicy['attestations'][number]['conditions'][number]['test']): string {
  if (t.kind === 'equals') return JSON.stringify(t.value);
  if (t.kind === 'exists') return t.value ? 'present' : 'absent';
  return t.matcher.source;
}
