/**
 * Deploy VSAs: signed by a deployers key, verified by `ct verify-attestation`, rejected after any
 * byte change, for another key role, digest or environment; and the policy rule that requires one.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isOwnDeployVsa, signDeployVsa, verifiedEnvironments, verifyDeployVsa } from '../../src/attest/vsa.js';
import { evaluate } from '../../src/policy/evaluate.js';
import { makeKey, makeStore, type TestKey } from '../verify/fixtures.js';
import { tempDir } from '../verify/ctp-fixtures.js';
import { runCt } from '../support/cli.js';
import { codeOf } from '../support/error-code.js';
import { att, keySigner, setOf, v2, SLSA } from '../policy/helpers.js';

const IMAGE = `sha256:${'a'.repeat(64)}`;
const OTHER = `sha256:${'b'.repeat(64)}`;
const BUNDLE = `sha256:${'c'.repeat(64)}`;
const deployer = makeKey();
const builder = makeKey();
const store = makeStore({ signers: [{ key: deployer, role: 'deployers' }, { key: builder, role: 'builders' }], logs: [] });
const facts = { verifierId: 'https://deploy.example', environment: 'staging', imageDigest: IMAGE, bundleDigest: BUNDLE, reference: `registry.example/acme/hello@${IMAGE}`, policyDigest: OTHER, time: new Date('2026-12-01T10:00:00Z'), deploymentId: 'd-1' };
const sign = (k: TestKey = deployer, f = facts) => signDeployVsa(f, k.privateKey);
let tmp: Awaited<ReturnType<typeof tempDir>>;

beforeAll(async () => {
  tmp = await tempDir('ct-vsa-');
  await writeFile(join(tmp.dir, 'trust-store.json'), JSON.stringify(store));
});
afterAll(() => tmp.cleanup());

describe('deploy VSA', () => {
  it('verifies: environment, subject, signer', () => {
    const v = verifyDeployVsa(sign(), { store, imageDigest: IMAGE, bundleDigest: BUNDLE, environment: 'staging' });
    expect(v).toMatchObject({ environment: 'staging', imageDigest: IMAGE, bundleDigest: BUNDLE, keyId: deployer.keyId, timeVerified: '2026-12-01T10:00:00.000Z', verifier: 'https://deploy.example' });
    const statement = JSON.parse(Buffer.from(JSON.parse(sign().toString()).payload, 'base64').toString());
    expect(statement).toMatchObject({ _type: 'https://in-toto.io/Statement/v1', predicateType: 'https://slsa.dev/verification_summary/v1', predicate: { verificationResult: 'PASSED', policy: { uri: 'urn:cerro-torre:environment:staging' }, resourceUri: `oci://registry.example/acme/hello@${IMAGE}` } });
  });

  it('is our own (what the server may delete as superseded) only when signed by our key, about this image and environment, unchanged', () => {
    const own = { keyId: deployer.keyId, publicKey: deployer.publicKey };
    const x = { imageDigest: IMAGE, environment: 'staging' };
    expect(isOwnDeployVsa(sign(), own, x)).toBe(true);
    expect(isOwnDeployVsa(sign(builder), own, x)).toBe(false);
    expect(isOwnDeployVsa(sign(), { keyId: builder.keyId, publicKey: builder.publicKey }, x)).toBe(false);
    // The signature must also name our key id.
    expect(isOwnDeployVsa(sign(), { keyId: builder.keyId, publicKey: deployer.publicKey }, x)).toBe(false);
    expect(isOwnDeployVsa(sign(), own, { imageDigest: OTHER, environment: 'staging' })).toBe(false);
    expect(isOwnDeployVsa(sign(), own, { imageDigest: IMAGE, environment: 'production' })).toBe(false);
    const bytes = Buffer.from(sign());
    bytes[bytes.length - 10] ^= 1;
    expect(isOwnDeployVsa(bytes, own, x)).toBe(false);
    expect(isOwnDeployVsa(Buffer.from('{}'), own, x)).toBe(false);
  });

  it('is rejected after any byte changes (every position of the file)', () => {
    const good = sign();
    const codes = new Set<string>();
    for (let i = 0; i < good.length; i++) {
      const bad = Buffer.from(good);
      bad[i] ^= 0x01;
      const code = codeOf(() => verifyDeployVsa(bad, { store, imageDigest: IMAGE, environment: 'staging' }));
      if (code === undefined) throw new Error(`byte ${i} (${String.fromCharCode(good[i])}) changed and the VSA still verified`);
      codes.add(code);
    }
    expect([...codes].sort()).toEqual(expect.arrayContaining(['INVALID_SIGNATURE', 'VSA_INVALID']));
    // Appending or removing bytes too.
    expect(codeOf(() => verifyDeployVsa(Buffer.concat([good, Buffer.from('\n')]), { store, imageDigest: IMAGE }))).toBe('VSA_INVALID');
    expect(codeOf(() => verifyDeployVsa(good.subarray(0, good.length - 1), { store, imageDigest: IMAGE }))).toBe('VSA_INVALID');
  });

  it('refuses a key without the deployers role, an unknown key, another digest or environment', () => {
    expect(codeOf(() => verifyDeployVsa(sign(builder), { store, imageDigest: IMAGE }))).toBe('VSA_NOT_DEPLOYER');
    expect(codeOf(() => verifyDeployVsa(sign(makeKey()), { store, imageDigest: IMAGE }))).toBe('UNKNOWN_KEY');
    expect(codeOf(() => verifyDeployVsa(sign(), { store, imageDigest: OTHER }))).toBe('VSA_SUBJECT_MISMATCH');
    expect(codeOf(() => verifyDeployVsa(sign(), { store, imageDigest: IMAGE, bundleDigest: OTHER }))).toBe('VSA_SUBJECT_MISMATCH');
    expect(codeOf(() => verifyDeployVsa(sign(), { store, imageDigest: IMAGE, environment: 'production' }))).toBe('VSA_ENVIRONMENT_MISMATCH');
    const expired = makeStore({ signers: [{ key: deployer, role: 'deployers', validUntil: '2025-01-01T00:00:00Z' }], logs: [] });
    expect(codeOf(() => verifyDeployVsa(sign(), { store: expired, imageDigest: IMAGE }))).toBe('EXPIRED_KEY');
    const r = verifiedEnvironments([sign(), sign(builder), sign(deployer, { ...facts, environment: 'qa' })], { store, imageDigest: IMAGE });
    expect(r.environments).toEqual(['qa', 'staging']);
    expect(r.rejected.map((x) => x.code)).toEqual(['VSA_NOT_DEPLOYER']);
  });

  it('ct verify-attestation: exit 0 when it verifies, non-zero with the code after a byte change or for another environment', async () => {
    const file = join(tmp.dir, 'vsa.json');
    const good = sign();
    await writeFile(file, good);
    const ts = join(tmp.dir, 'trust-store.json');
    const ok = await runCt(['verify-attestation', file, '--trust-store', ts, '--digest', IMAGE, '--environment', 'staging', '--json']);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ environment: 'staging', keyId: deployer.keyId });
    const i = good.indexOf('"sig":"') + 10;
    const bad = Buffer.from(good);
    bad[i] = bad[i] === 0x41 ? 0x42 : 0x41;
    await writeFile(file, bad);
    const r = await runCt(['verify-attestation', file, '--trust-store', ts, '--digest', IMAGE]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error[INVALID_SIGNATURE]');
    await writeFile(file, good);
    const prod = await runCt(['verify-attestation', file, '--trust-store', ts, '--digest', IMAGE, '--environment', 'production']);
    expect(prod.code).toBe(4);
    expect(prod.stderr).toContain('error[VSA_ENVIRONMENT_MISMATCH]');
  });
});

describe('policy rule requireVerifiedIn', () => {
  const set = setOf({ 'prod.policy.yaml': v2('prod', `match:\n  environments: [production]\nsigners:\n  - role: builders\nattestations:\n  - predicateType: ${SLSA}\nrequireVerifiedIn: [staging]\n`) });
  const input = (verifiedIn?: string[]) => ({ evidence: { imageDigest: IMAGE, attestations: [att(SLSA, [keySigner(builder.keyId)])] }, manifest: {}, host: { environment: 'production' }, ...(verifiedIn ? { verifiedIn } : {}) });

  it('denies a bundle that never ran in staging, allows one with a staging VSA', () => {
    const never = evaluate(set, input());
    expect(never.allow).toBe(false);
    expect(never.violations.map((v) => [v.code, v.rule])).toEqual([['NOT_VERIFIED_IN', 'requireVerifiedIn']]);
    expect(evaluate(set, input(['qa'])).allow).toBe(false);
    const ran = verifiedEnvironments([sign()], { store, imageDigest: IMAGE }).environments;
    expect(evaluate(set, input(ran)).allow).toBe(true);
  });

  it('is checked by the schema (environment names, at least one)', () => {
    expect(() => setOf({ 'p.policy.yaml': v2('p', 'match:\n  all: true\nsigners:\n  - role: builders\nrequireVerifiedIn: []\n') })).toThrow();
    expect(() => setOf({ 'p.policy.yaml': v2('p', 'match:\n  all: true\nsigners:\n  - role: builders\nrequireVerifiedIn: [Staging!]\n') })).toThrow();
  });
});
