import { describe, it, expect } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { verifyVcsBundle, type VcsVerifyOptions } from '../../src/verify/vcs/verify-bundle.js';
import { parseSvalinnPolicyText } from '../../src/verify/vcs/svalinn-v1.js';
import { parseTrustStore } from '../../src/trust/store.js';
import { sha256Digest } from '../../src/core/digest.js';
import { attestationDigest } from '../../src/attest/vcs-bundle.js';
import type { Mode } from '../../src/verify/evidence.js';
import { bytesOf, clone, IMAGE_DIGEST, makeBundle, makeKey, makeStore, MemLog, trustOf } from './fixtures.js';

const signer = makeKey();
const other = makeKey();
const logA = new MemLog('log-a', 'Operator A');
const logB = new MemLog('log-b', 'Operator B');
const store = makeStore({ signers: [{ key: signer }], logs: [logA, logB] });
const valid = makeBundle({ signers: [signer], logs: [logA, logB] });

function run(bytes: Buffer | string, opts: Partial<VcsVerifyOptions> = {}) {
  return verifyVcsBundle(bytes, { trust: trustOf(store), imageDigest: IMAGE_DIGEST, ...opts });
}

function mutated(f: (b: ReturnType<typeof clone<typeof valid.bundle>>) => void): Buffer {
  const b = clone(valid.bundle);
  f(b);
  return bytesOf(b);
}

const MODES: Mode[] = ['strict', 'permissive', 'audit'];

describe('VCS verifier: valid bundle', () => {
  it('allows a bundle signed by a trusted key and recorded in two logs of distinct operators', () => {
    const r = run(valid.bytes);
    expect(r.decision).toBe('ALLOW');
    expect(r.code).toBeNull();
    expect(r.attestationsVerified).toBe(2);
    expect(r.logEntriesVerified).toBe(4);
    expect(r.evidence.attestations.map((a) => a.logOperators)).toEqual([['Operator A', 'Operator B'], ['Operator A', 'Operator B']]);
    expect(r.evidence.attestations[0].digest).toBe(attestationDigest(valid.bundle.attestations[0]));
    expect(r.evidence.attestations[0].signers[0]).toMatchObject({ kind: 'key', keyId: signer.keyId, roles: ['builders'] });
    expect(r.record).toMatchObject({ decision: 'ALLOW', imageDigest: IMAGE_DIGEST, bundleDigest: sha256Digest(valid.bytes), mode: 'strict', code: null, trustStoreVersion: 1 });
    expect(r.legacyPae).toBe(false);
  });

  it('infers the image digest from the first subject when none is given', () => {
    const r = verifyVcsBundle(valid.bytes, { trust: trustOf(store) });
    expect(r.decision).toBe('ALLOW');
    expect(r.record.imageDigest).toBe(IMAGE_DIGEST);
  });
});

// Each case changes exactly one thing in the valid fixture; listed in the SPEC §4 order.
const integrityCases: [string, string, () => ReturnType<typeof run>][] = [
  ['not JSON', 'MALFORMED_BUNDLE', () => run(Buffer.from('{"mediaType":'))],
  ['wrong mediaType', 'MALFORMED_BUNDLE', () => run(mutated((b) => ((b as { mediaType: string }).mediaType = 'application/json')))],
  ['payload not base64', 'MALFORMED_BUNDLE', () => run(mutated((b) => (b.attestations[0].payload = '!!!')))],
  ['statement without subject', 'MALFORMED_BUNDLE', () => run(mutated((b) => (b.attestations[0].payload = Buffer.from('{"_type":"https://in-toto.io/Statement/v1","predicateType":"x"}').toString('base64'))))],
  ['integratedTime not a date', 'MALFORMED_BUNDLE', () => run(mutated((b) => (b.logEntries[0].integratedTime = 'yesterday')))],
  ['subject is another image', 'SUBJECT_MISMATCH', () => run(valid.bytes, { imageDigest: sha256Digest('another image') })],
  ['key not in the trust store', 'UNKNOWN_KEY', () => run(valid.bytes, { trust: trustOf(makeStore({ signers: [{ key: other }], logs: [logA, logB] })) })],
  ['key revoked', 'REVOKED_KEY', () => run(valid.bytes, { trust: trustOf(makeStore({ signers: [{ key: signer }], logs: [logA, logB], revoked: { keys: [signer.keyId] } })) })],
  ['key expired', 'EXPIRED_KEY', () => run(valid.bytes, { trust: trustOf(makeStore({ signers: [{ key: signer, validUntil: '2025-01-01T00:00:00Z' }], logs: [logA, logB] })) })],
  ['key not yet valid', 'KEY_NOT_YET_VALID', () => run(valid.bytes, { trust: trustOf(makeStore({ signers: [{ key: signer, validFrom: '2999-01-01T00:00:00Z' }], logs: [logA, logB] })) })],
  ['signature byte changed', 'INVALID_SIGNATURE', () => run(mutated((b) => {
    const s = Buffer.from(b.attestations[1].signatures[0].sig, 'base64');
    s[5] ^= 1;
    b.attestations[1].signatures[0].sig = s.toString('base64');
  }))],
  ['empty signatures array', 'INVALID_SIGNATURE', () => run(mutated((b) => (b.attestations[0].signatures = [])))],
  ['signature of another key under this keyid', 'INVALID_SIGNATURE', () => run(makeBundle({ signers: [other], logs: [logA, logB] }).bytes.toString().replaceAll(other.keyId, signer.keyId))],
  ['legacy PAE without allowLegacyPae', 'INVALID_SIGNATURE', () => run(makeBundle({ signers: [signer], logs: [logA, logB], legacy: true }).bytes)],
  ['attestation revoked', 'REVOKED_ATTESTATION', () => run(valid.bytes, { trust: trustOf(makeStore({ signers: [{ key: signer }], logs: [logA, logB], revoked: { attestations: [attestationDigest(valid.bundle.attestations[0])] } })) })],
  ['SET byte changed', 'LOG_PROOF_INVALID', () => run(mutated((b) => {
    const s = Buffer.from(b.logEntries[2].signedEntryTimestamp, 'base64');
    s[0] ^= 1;
    b.logEntries[2].signedEntryTimestamp = s.toString('base64');
  }))],
  ['proof path hash changed', 'LOG_PROOF_INVALID', () => run(mutated((b) => (b.logEntries[1].inclusionProof.hashes[0] = '0'.repeat(64))))],
  ['root hash changed', 'LOG_PROOF_INVALID', () => run(mutated((b) => (b.logEntries[0].inclusionProof.rootHash = 'a'.repeat(64))))],
  ['logIndex changed', 'LOG_PROOF_INVALID', () => run(mutated((b) => {
    b.logEntries[0].logIndex += 1;
    b.logEntries[0].inclusionProof.logIndex += 1;
  }))],
  ['integratedTime changed (entry bytes differ)', 'LOG_PROOF_INVALID', () => run(mutated((b) => (b.logEntries[3].integratedTime = '2026-11-26T00:00:01Z')))],
  ['SET signed by another log key', 'LOG_PROOF_INVALID', () => run(mutated((b) => (b.logEntries[0].signedEntryTimestamp = b.logEntries[2].signedEntryTimestamp)))],
];

describe('VCS verifier: integrity failures reject in every mode', () => {
  for (const [name, code, f] of integrityCases) {
    it(`${name} → ${code}`, () => {
      const r = f();
      expect(r.decision).toBe('REJECT');
      expect(r.code).toBe(code);
      expect(r.record).toMatchObject({ decision: 'REJECT', code });
    });
  }
  it('no mode downgrades an integrity failure', () => {
    const bad = mutated((b) => (b.attestations[0].signatures = []));
    for (const mode of MODES) {
      expect(run(bad, { mode }).decision).toBe('REJECT');
      expect(run(valid.bytes, { mode, imageDigest: sha256Digest('x') }).code).toBe('SUBJECT_MISMATCH');
      expect(run(mutated((b) => (b.logEntries[0].inclusionProof.rootHash = 'b'.repeat(64))), { mode }).decision).toBe('REJECT');
      expect(run('not json', { mode }).code).toBe('MALFORMED_BUNDLE');
    }
  });
  it('reports the earlier stage when two things are wrong (unknown key before bad signature)', () => {
    const b = mutated((x) => {
      x.attestations[0].signatures[0].sig = x.attestations[1].signatures[0].sig;
      x.attestations[1].signatures[0].keyid = other.keyId;
    });
    expect(run(b).code).toBe('UNKNOWN_KEY');
  });
  it('checks signatures before log proofs', () => {
    const b = mutated((x) => {
      x.attestations[1].signatures = [];
      x.logEntries[0].inclusionProof.rootHash = 'c'.repeat(64);
    });
    expect(run(b).code).toBe('INVALID_SIGNATURE');
  });
});

describe('VCS verifier: requirements and modes', () => {
  const oneLog = makeBundle({ signers: [signer], logs: [logA] });
  it('one log → INSUFFICIENT_LOG_COVERAGE in strict, warning in permissive, recorded in audit', () => {
    expect(run(oneLog.bytes).code).toBe('INSUFFICIENT_LOG_COVERAGE');
    const p = run(oneLog.bytes, { mode: 'permissive' });
    expect(p.decision).toBe('ALLOW');
    expect(p.code).toBeNull();
    expect(p.warnings.some((w) => w.startsWith('INSUFFICIENT_LOG_COVERAGE'))).toBe(true);
    const a = run(oneLog.bytes, { mode: 'audit' });
    expect(a.decision).toBe('ALLOW');
    expect(a.record.code).toBe('INSUFFICIENT_LOG_COVERAGE');
    expect(run(oneLog.bytes, { requirements: { logQuorum: 1 } }).decision).toBe('ALLOW');
  });
  it('two logs of the same operator count once', () => {
    const logC = new MemLog('log-c', 'Operator A');
    const s = makeStore({ signers: [{ key: signer }], logs: [logA, logC] });
    const r = run(makeBundle({ signers: [signer], logs: [logA, logC] }).bytes, { trust: trustOf(s) });
    expect(r.code).toBe('INSUFFICIENT_LOG_COVERAGE');
  });
  it('entries of a log absent from the trust store do not count', () => {
    const s = makeStore({ signers: [{ key: signer }], logs: [logA] });
    const r = run(valid.bytes, { trust: trustOf(s) });
    expect(r.code).toBe('INSUFFICIENT_LOG_COVERAGE');
    expect(r.warnings.length).toBeGreaterThan(0);
    expect(run(valid.bytes, { trust: trustOf(s), requirements: { logQuorum: 1 } }).decision).toBe('ALLOW');
  });
  it('quorum is per attestation: one attestation in two logs, the other in one → coverage fails', () => {
    const b = mutated((x) => (x.logEntries = x.logEntries.filter((_, i) => i !== 3)));
    expect(run(b).code).toBe('INSUFFICIENT_LOG_COVERAGE');
  });
  it('threshold group not met → THRESHOLD_NOT_MET; met with two signers', () => {
    const thresholds = { release: { k: 2, n: 2, algorithm: 'frost-ed25519', members: [signer.keyId, other.keyId] } };
    const s = makeStore({ signers: [{ key: signer }, { key: other, role: 'releasers' }], logs: [logA, logB], thresholds });
    expect(run(valid.bytes, { trust: trustOf(s) }).code).toBe('THRESHOLD_NOT_MET');
    expect(run(valid.bytes, { trust: trustOf(s), mode: 'permissive' }).decision).toBe('ALLOW');
    const both = makeBundle({ signers: [signer, other], logs: [logA, logB] });
    const r = run(both.bytes, { trust: trustOf(s) });
    expect(r.decision).toBe('ALLOW');
    expect(r.thresholdsMet).toEqual(['release']);
  });
  it('required predicate missing → MISSING_ATTESTATION', () => {
    const slsaOnly = mutated((x) => {
      x.attestations = x.attestations.slice(0, 1);
      x.logEntries = [x.logEntries[0], x.logEntries[2]];
    });
    expect(run(slsaOnly).code).toBe('MISSING_ATTESTATION');
    expect(run(slsaOnly, { requirements: { requiredPredicates: ['https://slsa.dev/provenance/v1'] } }).decision).toBe('ALLOW');
  });
  it('no attestations → MISSING_ATTESTATION (a requirement: permissive allows with a warning)', () => {
    const empty = mutated((x) => {
      x.attestations = [];
      x.logEntries = [];
    });
    expect(run(empty).code).toBe('MISSING_ATTESTATION');
    expect(run(empty, { mode: 'permissive' }).decision).toBe('ALLOW');
  });
  it('allowedSigners excluding the signer → POLICY_VIOLATION', () => {
    expect(run(valid.bytes, { requirements: { allowedSigners: [other.keyId] } }).code).toBe('POLICY_VIOLATION');
    expect(run(valid.bytes, { requirements: { allowedSigners: [signer.keyId] } }).decision).toBe('ALLOW');
  });
  it('legacy PAE verifies only when allowed, and is reported', () => {
    const legacy = makeBundle({ signers: [signer], logs: [logA, logB], legacy: true });
    const r = run(legacy.bytes, { allowLegacyPae: true });
    expect(r.decision).toBe('ALLOW');
    expect(r.legacyPae).toBe(true);
    expect(r.evidence.attestations.every((a) => a.legacyPae === true)).toBe(true);
    expect(r.warnings.some((w) => /legacy/i.test(w))).toBe(true);
    expect(run(legacy.bytes).code).toBe('INVALID_SIGNATURE');
    // A standard signature is never reported as legacy.
    expect(run(valid.bytes, { allowLegacyPae: true }).legacyPae).toBe(false);
  });
});

describe('VCS verifier: the upstream MVP sample', () => {
  const dir = join(process.cwd(), '..', 'shared', 'reference', 'samples', 'vcs-mvp', 'valid-mvp-hello');
  const bundle = readFileSync(join(dir, 'bundle.json'));
  const mvpStore = parseTrustStore(readFileSync(join(dir, 'trust-store.json'), 'utf8'));
  const policy = parseSvalinnPolicyText(readFileSync(join(dir, 'policy.json'), 'utf8'));
  const image = readFileSync(join(dir, 'image-digest.txt'), 'utf8').trim();
  const opts = { trust: trustOf(mvpStore), imageDigest: image, requirements: policy.requirements, mode: policy.mode, policyDigest: policy.digest };
  it('verifies with legacy PAE and the policy (logQuorum 1)', () => {
    const r = verifyVcsBundle(bundle, { ...opts, allowLegacyPae: true });
    expect(r.decision).toBe('ALLOW');
    expect(r.legacyPae).toBe(true);
    expect(r.logEntriesVerified).toBe(2);
    expect(r.record.policyDigest).toBe(policy.digest);
  });
  it('is rejected without legacy PAE (INVALID_SIGNATURE)', () => {
    expect(verifyVcsBundle(bundle, opts).code).toBe('INVALID_SIGNATURE');
  });
  it('is rejected without the policy (default quorum 2)', () => {
    expect(verifyVcsBundle(bundle, { trust: trustOf(mvpStore), imageDigest: image, allowLegacyPae: true }).code).toBe('INSUFFICIENT_LOG_COVERAGE');
  });
});
