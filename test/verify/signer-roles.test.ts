/** #13 finding 4: without a policy, an attestation counts only when a key whose role may sign it did. */
import { describe, expect, it } from '@jest/globals';
import { verifyVcsBundle } from '../../src/verify/vcs/verify-bundle.js';
import { parseSvalinnPolicyText } from '../../src/verify/vcs/svalinn-v1.js';
import { IMAGE_DIGEST, makeBundle, makeKey, makeStore, MemLog, trustOf } from './fixtures.js';

const key = makeKey();
const logA = new MemLog('log-a', 'Operator A');
const logB = new MemLog('log-b', 'Operator B');
const bundle = makeBundle({ signers: [key], logs: [logA, logB] });
const storeWith = (role: string) => makeStore({ signers: [{ key, role }], logs: [logA, logB] });
const run = (role: string, extra: Parameters<typeof verifyVcsBundle>[1] extends infer O ? Partial<O> : never = {}) =>
  verifyVcsBundle(bundle.bytes, { trust: trustOf(storeWith(role)), imageDigest: IMAGE_DIGEST, ...extra });

describe('signer roles are enforced without a policy', () => {
  it.each(['trust-store-updaters', 'reviewers', 'releasers'])('a key trusted only as %s cannot sign the build attestations', (role) => {
    const r = run(role);
    expect(r.decision).toBe('REJECT');
    expect(r.code).toBe('SIGNER_ROLE_NOT_ALLOWED');
    expect(r.message).toContain('needs builders');
  });

  it('a builders key can', () => {
    expect(run('builders').decision).toBe('ALLOW');
  });

  it('the explicit widening (signerRoles any, ct verify --any-signer-role) counts any trusted key', () => {
    expect(run('reviewers', { requirements: { signerRoles: 'any' } }).decision).toBe('ALLOW');
  });

  it("a policy's explicit allowedSigners decides instead", () => {
    const policy = parseSvalinnPolicyText(JSON.stringify({ version: 1, requiredPredicates: ['https://slsa.dev/provenance/v1'], allowedSigners: [key.keyId], logQuorum: 2 }));
    expect(run('reviewers', { requirements: policy.requirements }).decision).toBe('ALLOW');
  });
});
