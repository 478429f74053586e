/**
 * The verification report shared by every attestation verifier (VCS here, Sigstore in
 * src/verify/sigstore/). A verifier proves what it can (signatures, keys, log proofs) and throws
 * a CtError on an integrity failure; the requirements that a mode may relax (log quorum, threshold
 * groups, allowed signers, required predicates) are judged once, here, over the attestations of
 * all verifiers together, so that the log quorum counts Rekor and VCS logs alike (distinct
 * operators, SPEC §6).
 */
import { CtError } from '../core/errors.js';
import type { TrustStore } from '../trust/types.js';
import { evaluateThreshold } from '../trust/thresholds.js';
import { UPDATER_ROLE } from '../trust/update.js';
import { DEFAULT_REQUIRED_PREDICATES } from '../attest/statement.js';
import { rolesThatMaySign, signerMaySign } from './signer-roles.js';
import type { DecisionRecord, Evidence, Finding, Mode, VerifiedAttestation, VerifiedLogEntry, VerifiedSigner } from './evidence.js';

/** What an image must carry beyond valid signatures; the mode decides whether a miss rejects. */
export interface Requirements {
  requiredPredicates: string[];
  /** Distinct trusted log operators per attestation (SPEC §4 asks for 2; the MVP uses 1). */
  logQuorum: number;
  /** Key ids (or keyless subjects) of which at least one must have signed an attestation; undefined = any trusted key. */
  allowedSigners?: string[];
  /** Judge every threshold group of the trust store (default true). */
  checkThresholds: boolean;
  /**
   * Without allowedSigners, an attestation counts only when a key signer holds a role that may sign
   * its predicate type (signer-roles.ts); 'any' counts every trusted key whatever its role.
   */
  signerRoles?: 'by-predicate' | 'any';
}

export const DEFAULT_REQUIREMENTS: Readonly<Requirements> = Object.freeze({
  requiredPredicates: [...DEFAULT_REQUIRED_PREDICATES],
  logQuorum: 2,
  checkThresholds: true,
});

/**
 * The keyless identities trusted where no single identity was given on the command line: those the
 * policy set's keyless signers name (src/policy/keyless-trust.ts). What the trust store is to keys:
 * a Sigstore attestation counts only when its certificate's identity is one of them, and one signed
 * by any other identity rejects the bundle (IDENTITY_MISMATCH), as a key outside the store does.
 */
export interface KeylessTrust {
  /** Whether a verified certificate identity (a `keyless` signer) is trusted. */
  accepts(signer: VerifiedSigner): boolean;
  /** The trusted identities as the policies name them, for messages. */
  readonly labels: readonly string[];
  /** Changes whenever accepts() could answer otherwise: part of every cache key of a verdict. */
  readonly digest: string;
}

/** Trust material: a VCS trust store and, for the Sigstore verifier, a trusted root and identities. */
export interface TrustMaterial {
  store: TrustStore;
  storeDigest: string;
  trustedRoot?: unknown;
  trustedRootDigest?: string;
  keyless?: KeylessTrust;
}

/** One string for "the same trust": what caches of verified bundles are keyed by. */
export function trustKeyOf(t: TrustMaterial): string {
  return `${t.storeDigest}|${t.trustedRootDigest ?? ''}|${t.keyless?.digest ?? ''}`;
}

export interface AttestationInput {
  /** Path inside the .ctp (`attestations/bundle.json`) or the file name given on the command line. */
  name: string;
  data: Buffer;
}

export interface VerifyContext {
  /** The image the attestations must name; undefined lets `ct vcs verify` take it from the bundle. */
  imageDigest?: string;
  inputs: AttestationInput[];
  trust: TrustMaterial;
  allowLegacyPae: boolean;
  now: Date;
}

export interface VerifierResult {
  verifier: string;
  /** The image digest the verifier checked subjects against (given or inferred). */
  imageDigest?: string;
  attestations: VerifiedAttestation[];
  /** Requirement-level findings (an integrity failure is thrown, not returned). */
  findings: Finding[];
  warnings: string[];
  logEntriesVerified: number;
}

/**
 * One kind of attestation file. Verifiers are registered in a list (src/verify/ctp/verifiers.ts);
 * each claims the paths it reads. verify() throws CtError for integrity failures.
 */
export interface AttestationVerifier {
  readonly name: string;
  accepts(path: string): boolean;
  verify(ctx: VerifyContext): Promise<VerifierResult>;
}

export interface VerificationReport {
  decision: 'ALLOW' | 'REJECT';
  /** The code that rejected, or in audit mode the code that would have. */
  code: string | null;
  message?: string;
  mode: Mode;
  findings: Finding[];
  warnings: string[];
  evidence: Evidence;
  record: DecisionRecord;
  attestationsVerified: number;
  logEntriesVerified: number;
  thresholdsMet: string[];
  legacyPae: boolean;
}

export interface ReportBase {
  imageDigest: string | null;
  bundleDigest?: string;
  mode: Mode;
  trust?: TrustMaterial;
  policyDigest?: string;
  now: Date;
}

/** Merges what several verifiers proved about the same attestation (same digest). */
function mergeByDigest(atts: VerifiedAttestation[]): VerifiedAttestation[] {
  if (new Set(atts.map((a) => a.digest)).size === atts.length) return atts;
  const byDigest = new Map<string, VerifiedAttestation>();
  for (const a of atts) {
    const prev = byDigest.get(a.digest);
    if (!prev) {
      byDigest.set(a.digest, { ...a, logEntries: [...a.logEntries], signers: [...a.signers], logOperators: [...a.logOperators] });
      continue;
    }
    prev.logEntries.push(...a.logEntries);
    prev.signers.push(...a.signers);
    prev.logOperators = [...new Set([...prev.logOperators, ...a.logOperators])].sort();
    prev.legacyPae = prev.legacyPae || a.legacyPae;
  }
  return [...byDigest.values()];
}

function signerMatches(s: VerifiedSigner, allowed: string[]): boolean {
  if (s.kind === 'key') return s.keyId !== undefined && allowed.includes(s.keyId);
  return s.subject !== undefined && allowed.includes(s.subject);
}

/** Requirement findings in their fixed order: log coverage, thresholds, allowed signers, predicates. */
export function evaluateRequirements(
  atts: VerifiedAttestation[],
  req: Requirements,
  store: TrustStore | undefined,
  now: Date,
): { findings: Finding[]; thresholdsMet: string[] } {
  const findings: Finding[] = [];
  const thresholdsMet: string[] = [];
  if (atts.length === 0) {
    findings.push({ code: 'MISSING_ATTESTATION', integrity: false, message: 'no verified attestation for this image' });
    return { findings, thresholdsMet };
  }
  const short = atts.filter((a) => a.logOperators.length < req.logQuorum);
  if (short.length > 0) {
    findings.push({
      code: 'INSUFFICIENT_LOG_COVERAGE',
      integrity: false,
      message: `${short.length} attestation(s) recorded by fewer than ${req.logQuorum} distinct trusted log operator(s): ${short
        .map((a) => `${a.predicateType} (${a.digest.slice(0, 19)}…) has ${a.logOperators.length}`)
        .join(', ')}`,
      details: { logQuorum: req.logQuorum, attestations: short.map((a) => ({ digest: a.digest, operators: a.logOperators })) },
    });
  }
  if (req.checkThresholds && store?.thresholds) {
    const signerIds = [...new Set(atts.flatMap((a) => a.signers.filter((s) => s.kind === 'key' && s.keyId).map((s) => s.keyId!)))];
    // The trust-store-updaters group governs store updates (src/trust/update.ts): its keys never
    // sign attestations, so counted here it would reject every image.
    for (const group of Object.keys(store.thresholds).filter((g) => g !== UPDATER_ROLE).sort()) {
      const r = evaluateThreshold(store, group, signerIds, now);
      if (r.met) thresholdsMet.push(group);
      else {
        findings.push({
          code: 'THRESHOLD_NOT_MET',
          integrity: false,
          message: `threshold group ${group}: ${r.distinct} of the required ${r.k} distinct valid signers`,
          details: { group, k: r.k, distinct: r.distinct, counted: r.counted },
        });
      }
    }
  }
  let eligible = atts;
  if (!req.allowedSigners && req.signerRoles !== 'any') {
    eligible = atts.filter((a) => a.signers.some((s) => signerMaySign(s, a)));
    const refused = atts.filter((a) => !eligible.includes(a));
    if (refused.length > 0) {
      findings.push({
        code: 'SIGNER_ROLE_NOT_ALLOWED',
        integrity: false,
        message: `${refused.length} attestation(s) signed by no key whose role may sign them: ${refused
          .map((a) => `${a.predicateType} needs ${rolesThatMaySign(a.predicateType).join(' or ')}, signed by ${a.signers.map((s) => `${s.keyId ?? s.subject} (${(s.roles ?? []).join(', ') || 'no role'})`).join(', ')}`)
          .join('; ')} (a policy's allowedSigners or --any-signer-role widens this)`,
        details: { rule: 'signerRoles', attestations: refused.map((a) => ({ digest: a.digest, predicateType: a.predicateType, roles: rolesThatMaySign(a.predicateType) })) },
      });
    }
  }
  if (req.allowedSigners) {
    const allowed = req.allowedSigners;
    eligible = atts.filter((a) => a.signers.some((s) => signerMatches(s, allowed)));
    const refused = atts.filter((a) => !eligible.includes(a));
    if (refused.length > 0) {
      findings.push({
        code: 'POLICY_VIOLATION',
        integrity: false,
        message: `${refused.length} attestation(s) signed by no allowed signer: ${refused
          .map((a) => `${a.predicateType} signed by ${a.signers.map((s) => s.keyId ?? s.subject).join(', ')}`)
          .join('; ')}`,
        details: { rule: 'allowedSigners', attestations: refused.map((a) => a.digest) },
      });
    }
  }
  const present = new Set(eligible.map((a) => a.predicateType));
  const missing = req.requiredPredicates.filter((p) => !present.has(p));
  if (missing.length > 0) {
    findings.push({
      code: 'MISSING_ATTESTATION',
      integrity: false,
      message: `required predicate(s) without a verified attestation: ${missing.join(', ')}`,
      details: { missing },
    });
  }
  return { findings, thresholdsMet };
}

function record(base: ReportBase, decision: 'ALLOW' | 'REJECT', code: string | null, message: string | undefined, warnings: string[]): DecisionRecord {
  const r: DecisionRecord = {
    time: base.now.toISOString(),
    imageDigest: base.imageDigest,
    bundleDigest: base.bundleDigest ?? null,
    decision,
    mode: base.mode,
    code,
    warnings,
  };
  if (message !== undefined) r.message = message;
  if (base.trust) r.trustStoreVersion = base.trust.store.version;
  if (base.policyDigest) r.policyDigest = base.policyDigest;
  return r;
}

/** The report of a verification that stopped on an integrity failure (any mode). */
export function rejectReport(err: CtError, base: ReportBase, warnings: string[] = []): VerificationReport {
  const finding: Finding = { code: err.code, message: err.message, integrity: true, details: err.details };
  return {
    decision: 'REJECT',
    code: err.code,
    message: err.message,
    mode: base.mode,
    findings: [finding],
    warnings,
    evidence: { imageDigest: base.imageDigest ?? '', ...(base.bundleDigest ? { bundleDigest: base.bundleDigest } : {}), attestations: [] },
    record: record(base, 'REJECT', err.code, err.message, warnings),
    attestationsVerified: 0,
    logEntriesVerified: 0,
    thresholdsMet: [],
    legacyPae: false,
  };
}

/**
 * Combines verifier results into the decision. Integrity findings reject in every mode;
 * requirement findings reject in strict, become warnings in permissive, and in audit are
 * recorded (record.code) without blocking.
 */
export function combineReport(
  base: ReportBase,
  results: VerifierResult[],
  requirements: Requirements,
  extra: { coveredFiles?: Record<string, string>; warnings?: string[] } = {},
): VerificationReport {
  const atts = mergeByDigest(results.flatMap((r) => r.attestations));
  const warnings = [...(extra.warnings ?? []), ...results.flatMap((r) => r.warnings)];
  const pre = results.flatMap((r) => r.findings);
  const req = evaluateRequirements(atts, requirements, base.trust?.store, base.now);
  // A verifier's own MISSING_ATTESTATION (empty bundle) duplicates the combined one.
  const findings = [...pre.filter((f) => f.integrity || f.code !== 'MISSING_ATTESTATION' || atts.length > 0), ...req.findings];
  const evidence: Evidence = {
    imageDigest: base.imageDigest ?? '',
    ...(base.bundleDigest ? { bundleDigest: base.bundleDigest } : {}),
    attestations: atts,
    ...(extra.coveredFiles ? { coveredFiles: extra.coveredFiles } : {}),
  };
  const legacyPae = atts.some((a) => a.legacyPae);
  const logEntriesVerified = results.reduce((n, r) => n + r.logEntriesVerified, 0);
  const integrity = findings.find((f) => f.integrity);
  const first = integrity ?? findings[0];
  let decision: 'ALLOW' | 'REJECT' = 'ALLOW';
  let code: string | null = null;
  let message: string | undefined;
  if (first) {
    if (integrity || base.mode === 'strict') {
      decision = 'REJECT';
      code = first.code;
      message = first.message;
    } else {
      warnings.push(...findings.map((f) => `${f.code}: ${f.message}`));
      if (base.mode === 'audit') {
        code = first.code;
        message = `audit mode: would reject with ${first.code}: ${first.message}`;
      }
    }
  }
  return {
    decision,
    code,
    ...(message !== undefined ? { message } : {}),
    mode: base.mode,
    findings,
    warnings,
    evidence,
    record: record(base, decision, code, message, warnings),
    attestationsVerified: atts.length,
    logEntriesVerified,
    thresholdsMet: req.thresholdsMet,
    legacyPae,
  };
}

/** Every log entry of the evidence, for display. */
export function evidenceLogEntries(e: Evidence): VerifiedLogEntry[] {
  return e.attestations.flatMap((a) => a.logEntries);
}

/**
 * Runs verifiers over their inputs and combines the results. A CtError thrown by a verifier (an
 * integrity failure) becomes a REJECT report; any other exception is a bug and propagates.
 */
export async function runVerifiers(
  base: ReportBase,
  verifiers: AttestationVerifier[],
  ctxFor: (v: AttestationVerifier) => VerifyContext | undefined,
  requirements: Requirements,
  extra: { coveredFiles?: Record<string, string>; warnings?: string[] } = {},
): Promise<{ report: VerificationReport; results: VerifierResult[] }> {
  const results: VerifierResult[] = [];
  try {
    for (const v of verifiers) {
      const ctx = ctxFor(v);
      if (ctx) results.push(await v.verify(ctx));
    }
  } catch (e) {
    if (e instanceof CtError) return { report: rejectReport(e, base, extra.warnings), results };
    throw e;
  }
  return { report: combineReport(base, results, requirements, extra), results };
}
