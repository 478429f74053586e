import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verify } from 'node:crypto';
import { runCt } from '../support/cli.js';
import { privateKeyPem } from '../../src/trust/keys.js';
import { pae } from '../../src/attest/dsse.js';
import { sha256Digest } from '../../src/core/digest.js';
import { canonicalBytes } from '../../src/core/jcs.js';
import { leafHash } from '../../src/tlog/hashes.js';
import { buildStatement, ctpSubjects } from '../../src/attest/statement.js';
import { IMAGE_DIGEST, makeBundle, makeKey, makeStore, MemLog } from '../verify/fixtures.js';

const REF = join(process.cwd(), '..', 'shared', 'reference');
const VEC = join(REF, 'verified-container-spec', 'vectors');
const MVP = join(REF, 'samples', 'vcs-mvp', 'valid-mvp-hello');

let dir: string;
const signer = makeKey();
const logA = new MemLog('log-a', 'Operator A');
const logB = new MemLog('log-b', 'Operator B');
const fixture = makeBundle({ signers: [signer], logs: [logA, logB] });

async function vectorInput(rel: string): Promise<string> {
  const v = JSON.parse(await readFile(join(VEC, rel), 'utf8')) as { input: unknown };
  const p = join(dir, rel.replaceAll('/', '_'));
  await writeFile(p, JSON.stringify(v.input));
  return p;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ct-vcs-cli-'));
  await writeFile(join(dir, 'store.json'), JSON.stringify(makeStore({ signers: [{ key: signer }], logs: [logA, logB] })));
  await writeFile(join(dir, 'bundle.json'), fixture.bytes);
  await writeFile(join(dir, 'signer.key'), privateKeyPem(signer.privateKey));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const json = (s: string) => JSON.parse(s) as Record<string, unknown>;

describe('ct vcs validate', () => {
  it('accepts the valid trust-store vector', async () => {
    const r = await runCt(['vcs', 'validate', '--type', 'trust-store', '--input', await vectorInput('valid/trust-store/minimal-valid-trust-store.json')]);
    expect(r.code).toBe(0);
    expect(json(r.stdout).valid).toBe(true);
  });
  it('reports the flawed proof hash of the "valid" MVP bundle vector (65 hex digits) at its path', async () => {
    const r = await runCt(['vcs', 'validate', '--type', 'attestation-bundle', '--input', await vectorInput('valid/attestation-bundle/mvp-single-log-bundle.json')]);
    expect(r.code).toBe(1);
    expect((json(r.stdout).errors as { path: string }[]).map((e) => e.path)).toEqual(['$.logEntries[0].inclusionProof.hashes[0]']);
  });
  it('rejects the wrong media type with exit 1 and a path', async () => {
    const r = await runCt(['vcs', 'validate', '--type', 'attestation-bundle', '--input', await vectorInput('invalid/attestation-bundle/wrong-media-type.json')]);
    expect(r.code).toBe(1);
    const o = json(r.stdout) as { valid: boolean; errors: { path: string }[] };
    expect(o.valid).toBe(false);
    expect(o.errors.map((e) => e.path)).toContain('$.mediaType');
  });
  it('accepts a trust store with two logs, with a warning (SPEC §4 decision)', async () => {
    const r = await runCt(['vcs', 'validate', '--type', 'trust-store', '--input', await vectorInput('invalid/trust-store/insufficient-logs.json')]);
    expect(r.code).toBe(0);
    expect((json(r.stdout).warnings as string[]).length).toBe(1);
  });
  it('exit 2 on unreadable file, non-JSON and unknown type', async () => {
    expect((await runCt(['vcs', 'validate', '--type', 'trust-store', '--input', join(dir, 'nope.json')])).code).toBe(2);
    await writeFile(join(dir, 'garbage.json'), '{not json');
    expect((await runCt(['vcs', 'validate', '--type', 'trust-store', '--input', join(dir, 'garbage.json')])).code).toBe(2);
    expect((await runCt(['vcs', 'validate', '--type', 'nonsense', '--input', join(dir, 'store.json')])).code).toBe(2);
  });
});

describe('ct vcs verify', () => {
  it('ALLOW with counts for a real signed bundle', async () => {
    const r = await runCt(['vcs', 'verify', '--bundle', join(dir, 'bundle.json'), '--trust-store', join(dir, 'store.json'), '--image-digest', IMAGE_DIGEST]);
    expect(r.code).toBe(0);
    expect(json(r.stdout)).toMatchObject({ decision: 'ALLOW', attestationsVerified: 2, logEntriesVerified: 4, thresholdsMet: [] });
  });
  it('REJECT (exit 1) with the code for a subject mismatch, in every mode', async () => {
    for (const mode of ['strict', 'permissive', 'audit']) {
      const r = await runCt(['vcs', 'verify', '--bundle', join(dir, 'bundle.json'), '--trust-store', join(dir, 'store.json'), '--image-digest', sha256Digest('other'), '--mode', mode]);
      expect(r.code).toBe(1);
      expect(json(r.stdout)).toMatchObject({ decision: 'REJECT', errorCode: 'SUBJECT_MISMATCH' });
    }
  });
  it('the MVP sample verifies with --policy and --legacy-pae and says "legacy"', async () => {
    const r = await runCt(['vcs', 'verify', '--bundle', join(MVP, 'bundle.json'), '--trust-store', join(MVP, 'trust-store.json'), '--policy', join(MVP, 'policy.json'), '--legacy-pae']);
    expect(r.code).toBe(0);
    expect(json(r.stdout)).toMatchObject({ decision: 'ALLOW', attestationsVerified: 2, logEntriesVerified: 1 + 1, legacyPae: true });
    expect(r.stdout).toMatch(/legacy/);
  });
  it('the MVP sample is rejected without --legacy-pae (INVALID_SIGNATURE)', async () => {
    const r = await runCt(['vcs', 'verify', '--bundle', join(MVP, 'bundle.json'), '--trust-store', join(MVP, 'trust-store.json'), '--policy', join(MVP, 'policy.json')]);
    expect(r.code).toBe(1);
    expect(json(r.stdout)).toMatchObject({ decision: 'REJECT', errorCode: 'INVALID_SIGNATURE' });
  });
  it('exit 2 when the trust store cannot be read or the mode is unknown', async () => {
    expect((await runCt(['vcs', 'verify', '--bundle', join(dir, 'bundle.json'), '--trust-store', join(dir, 'missing.json')])).code).toBe(2);
    expect((await runCt(['vcs', 'verify', '--bundle', join(dir, 'bundle.json'), '--trust-store', join(dir, 'store.json'), '--mode', 'lenient'])).code).toBe(2);
    expect((await runCt(['vcs', 'verify', '--trust-store', join(dir, 'store.json')])).code).toBe(2);
  });
});

describe('ct vcs create-bundle / sign', () => {
  it('creates a bundle from envelopes and entries that verifies', async () => {
    await writeFile(join(dir, 'atts.json'), JSON.stringify(fixture.bundle.attestations));
    await writeFile(join(dir, 'entries.json'), JSON.stringify(fixture.bundle.logEntries));
    const outPath = join(dir, 'created.json');
    const r = await runCt(['vcs', 'create-bundle', '--attestations', join(dir, 'atts.json'), '--log-entries', join(dir, 'entries.json'), '--output', outPath]);
    expect(r.code).toBe(0);
    const o = json(r.stdout);
    expect(o.created).toBe(true);
    expect(o.bundleDigest).toBe(sha256Digest(await readFile(outPath)));
    const v = await runCt(['vcs', 'verify', '--bundle', outPath, '--trust-store', join(dir, 'store.json')]);
    expect(json(v.stdout).decision).toBe('ALLOW');
  });
  it('exit 1 for envelopes that are not envelopes', async () => {
    await writeFile(join(dir, 'bad-atts.json'), JSON.stringify([{ payload: 'x' }]));
    const r = await runCt(['vcs', 'create-bundle', '--attestations', join(dir, 'bad-atts.json'), '--log-entries', join(dir, 'entries.json'), '--output', join(dir, 'x.json')]);
    expect(r.code).toBe(1);
    expect(json(r.stdout).created).toBe(false);
  });
  it('signs a statement with the standard PAE', async () => {
    const st = buildStatement(ctpSubjects('app', IMAGE_DIGEST, []), 'https://slsa.dev/provenance/v1', {});
    await writeFile(join(dir, 'st.json'), JSON.stringify(st));
    const r = await runCt(['vcs', 'sign', '--statement', join(dir, 'st.json'), '--key', join(dir, 'signer.key'), '--output', join(dir, 'env.json')]);
    expect(r.code).toBe(0);
    expect(json(r.stdout)).toMatchObject({ signed: true, keyid: signer.keyId });
    const env = JSON.parse(await readFile(join(dir, 'env.json'), 'utf8')) as { payloadType: string; payload: string; signatures: { sig: string }[] };
    expect(verify(null, pae(env.payloadType, Buffer.from(env.payload, 'base64')), signer.publicKey, Buffer.from(env.signatures[0].sig, 'base64'))).toBe(true);
  });
  it('exit 1 for a statement that is not in-toto v1', async () => {
    await writeFile(join(dir, 'bad-st.json'), JSON.stringify({ _type: 'x' }));
    const r = await runCt(['vcs', 'sign', '--statement', join(dir, 'bad-st.json'), '--key', join(dir, 'signer.key'), '--output', join(dir, 'env2.json')]);
    expect(r.code).toBe(1);
  });
});

describe('ct vcs canonicalize / verify-proof', () => {
  it('sorts keys (key-ordering vector) and keeps the last duplicate', async () => {
    const v = JSON.parse(await readFile(join(VEC, 'adversarial/canonicalization/key-ordering.json'), 'utf8')) as { expected: { canonical: string } };
    const r = await runCt(['vcs', 'canonicalize', '--input', await vectorInput('adversarial/canonicalization/key-ordering.json')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(v.expected.canonical);
    const dup = JSON.parse(await readFile(join(VEC, 'adversarial/canonicalization/duplicate-keys.json'), 'utf8')) as { inputRaw: string; expected: { canonical: string } };
    await writeFile(join(dir, 'dup.json'), dup.inputRaw);
    const d = await runCt(['vcs', 'canonicalize', '--input', join(dir, 'dup.json'), '--output', join(dir, 'dup.out')]);
    expect(d.code).toBe(0);
    expect(await readFile(join(dir, 'dup.out'), 'utf8')).toBe(dup.expected.canonical);
  });
  it('exit 1 for invalid JSON, 2 for a missing file', async () => {
    expect((await runCt(['vcs', 'canonicalize', '--input', join(dir, 'garbage.json')])).code).toBe(1);
    expect((await runCt(['vcs', 'canonicalize', '--input', join(dir, 'absent.json')])).code).toBe(2);
  });
  it('verifies a real proof and rejects the all-zero path vector', async () => {
    const e = fixture.bundle.logEntries[0];
    const env = fixture.bundle.attestations[0];
    const entry = { version: 1, timestamp: e.integratedTime, entryType: 'attestation', body: { attestationDigest: sha256Digest(canonicalBytes(env)), subjectDigest: IMAGE_DIGEST, predicateType: 'https://slsa.dev/provenance/v1' } };
    const leaf = leafHash(canonicalBytes(entry)).toString('hex');
    await writeFile(join(dir, 'proof.json'), JSON.stringify(e.inclusionProof));
    const ok = await runCt(['vcs', 'verify-proof', '--proof', join(dir, 'proof.json'), '--leaf-hash', leaf]);
    expect(ok.code).toBe(0);
    expect(json(ok.stdout).valid).toBe(true);
    const bad = await runCt(['vcs', 'verify-proof', '--proof', await vectorInput('adversarial/proof/invalid-merkle-path.json'), '--leaf-hash', leaf]);
    expect(bad.code).toBe(1);
    expect(json(bad.stdout).valid).toBe(false);
    expect((await runCt(['vcs', 'verify-proof', '--proof', join(dir, 'proof.json'), '--leaf-hash', 'xyz'])).code).toBe(2);
  });
});
