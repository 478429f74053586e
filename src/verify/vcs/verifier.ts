/**
 * The VCS attestation-bundle verifier: stages in the SPEC §4 order — parse (MALFORMED_BUNDLE),
 * presence (MISSING_ATTESTATION), subject (SUBJECT_MISMATCH), keys (UNKNOWN_KEY, REVOKED_KEY,
 * EXPIRED_KEY, KEY_NOT_YET_VALID), signatures (INVALID_SIGNATURE), revoked attestations
 * (REVOKED_ATTESTATION), log proofs (LOG_PROOF_INVALID). Each stage runs over every attestation
 * before the next starts, so the reported code does not depend on attestation order. The
 * requirements (log quorum, thresholds, predicates) are judged by report.ts.
 */
import { CtError } from '../../core/errors.js';
import { isDigest } from '../../core/digest.js';
import { isAttestationRevoked } from '../../trust/store.js';
import type { VerifiedAttestation } from '../evidence.js';
import type { AttestationVerifier, VerifierResult, VerifyContext } from '../report.js';
import { parseVcsBundle, type ParsedVcsBundle } from './parse.js';
import { resolveKeys } from './keys.js';
import { checkSignatures } from './signatures.js';
import { checkLogSignatures, matchLogEntries } from './logs.js';

export const VCS_BUNDLE_PATH = 'attestations/bundle.json';

/** The image a bundle is about when the caller names none: the first subject of the first attestation. */
export function inferImageDigest(parsed: ParsedVcsBundle): string | undefined {
  const s = parsed.attestations[0]?.statement.subject[0];
  return s ? `sha256:${s.digest.sha256}` : undefined;
}

/** Verifies a parsed bundle; throws CtError on the first integrity failure. */
export function verifyParsedVcsBundle(parsed: ParsedVcsBundle, ctx: Omit<VerifyContext, 'inputs'>): VerifierResult {
  const result: VerifierResult = { verifier: 'vcs', attestations: [], findings: [], warnings: [], logEntriesVerified: 0 };
  if (parsed.attestations.length === 0) {
    result.findings.push({ code: 'MISSING_ATTESTATION', integrity: false, message: 'the VCS bundle holds no attestations' });
    result.imageDigest = ctx.imageDigest;
    return result;
  }
  const imageDigest = ctx.imageDigest ?? inferImageDigest(parsed)!;
  if (!isDigest(imageDigest)) throw new CtError('MALFORMED_BUNDLE', `image digest ${imageDigest} is not sha256:<64 hex>`, { imageDigest });
  result.imageDigest = imageDigest;
  const hex = imageDigest.slice(7);

  for (const a of parsed.attestations) {
    if (!a.statement.subject.some((s) => s.digest.sha256 === hex)) {
      throw new CtError('SUBJECT_MISMATCH', `$.attestations[${a.index}]: no subject has the image digest ${imageDigest} (subjects: ${a.statement.subject.map((s) => `sha256:${s.digest.sha256}`).join(', ')})`, {
        where: `$.attestations[${a.index}]`,
        expected: imageDigest,
        actual: a.statement.subject.map((s) => `sha256:${s.digest.sha256}`),
      });
    }
  }

  const store = ctx.trust.store;
  const signers = resolveKeys(parsed.attestations, store, ctx.now);
  // Proofs are matched (hashing only) before the signatures are checked, but a proof failure is
  // reported after them: the SPEC §4 order holds, and all signature checks run back to back.
  const plan = matchLogEntries(parsed.attestations, parsed.logEntries, imageDigest, store);
  const sigs = checkSignatures(parsed.attestations, signers, ctx.allowLegacyPae);

  for (const a of parsed.attestations) {
    if (isAttestationRevoked(store, a.digest)) {
      throw new CtError('REVOKED_ATTESTATION', `$.attestations[${a.index}]: attestation ${a.digest} is revoked`, { where: `$.attestations[${a.index}]`, digest: a.digest });
    }
  }

  if (plan.failure) throw plan.failure;
  const logs = checkLogSignatures(parsed.attestations, plan);
  result.warnings.push(...logs.warnings);
  result.logEntriesVerified = logs.verified;

  parsed.attestations.forEach((a, i) => {
    const att: VerifiedAttestation = {
      digest: a.digest,
      source: 'vcs',
      predicateType: a.statement.predicateType,
      predicate: a.statement.predicate,
      subjects: a.statement.subject.map((s) => ({ name: s.name, digest: s.digest })),
      signers: signers[i].map((s) => ({ kind: 'key' as const, keyId: s.keyId, roles: s.roles })),
      logEntries: logs.entries[i],
      logOperators: [...logs.operators[i]].sort(),
    };
    if (sigs[i].legacyPae) {
      att.legacyPae = true;
      result.warnings.push(`$.attestations[${a.index}] (${a.statement.predicateType}): signature verified over the legacy PAE (base64 text), accepted because legacy PAE was allowed`);
    }
    result.attestations.push(att);
  });
  return result;
}

/** The VCS verifier as a pluggable AttestationVerifier: it reads `attestations/bundle.json`. */
export const vcsVerifier: AttestationVerifier = {
  name: 'vcs',
  accepts: (path) => path === VCS_BUNDLE_PATH,
  async verify(ctx) {
    const input = ctx.inputs[0];
    if (!input) throw new CtError('MISSING_ATTESTATION', 'no VCS bundle', {});
    return verifyParsedVcsBundle(parseVcsBundle(input.data), ctx);
  },
};
