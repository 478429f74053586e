import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { verifyCtp } from '../../src/verify/ctp/verify-ctp.js';
import { VerificationCache } from '../../src/verify/cache.js';
import { openCtp } from '../../src/bundle/read.js';
import { rewriteCtp, writeCtp } from '../../src/bundle/write.js';
import { makeKey, makeStore, MemLog, trustOf } from './fixtures.js';
import { SECCOMP, signCtpInMemory, tempDir, writeUnsignedCtp } from './ctp-fixtures.js';

const signer = makeKey();
const logA = new MemLog('log-a', 'Operator A');
const logB = new MemLog('log-b', 'Operator B');
const trust = trustOf(makeStore({ signers: [{ key: signer }], logs: [logA, logB] }));
let tmp: { dir: string; cleanup: () => Promise<void> };
let signed: string;
let imageDigest: string;

/** Rewrites the signed .ctp with one file replaced, added or removed (no re-signing). */
async function tampered(name: string, f: (files: Map<string, Buffer>) => void): Promise<string> {
  const a = await openCtp(signed);
  const files = new Map<string, Buffer>();
  for (const [n, e] of a.entries) files.set(n, e.data ?? Buffer.alloc(0));
  f(files);
  const p = join(tmp.dir, `${name}.ctp`);
  await writeCtp(p, files);
  return p;
}

beforeAll(async () => {
  tmp = await tempDir();
  const unsigned = join(tmp.dir, 'unsigned.ctp');
  imageDigest = await writeUnsignedCtp(unsigned);
  signed = join(tmp.dir, 'signed.ctp');
  await signCtpInMemory(unsigned, signed, signer, [logA, logB]);
});
afterAll(async () => tmp.cleanup());

describe('verifyCtp', () => {
  it('allows a signed .ctp and lists the covered files', async () => {
    const r = await verifyCtp(signed, { trust });
    expect(r.decision).toBe('ALLOW');
    expect(r.record.imageDigest).toBe(imageDigest);
    expect(Object.keys(r.evidence.coveredFiles ?? {})).toEqual(['manifest.toml', 'oci-layout/index.json', 'oci-layout/oci-layout', 'security/seccomp.json']);
    expect(r.record.bundleDigest).toMatch(/^sha256:/);
  });
  it('an unsigned .ctp is rejected in every mode, said as unsigned (MISSING_ATTESTATION): nothing authenticates its manifest.toml', async () => {
    for (const mode of ['strict', 'permissive', 'audit'] as const) {
      const r = await verifyCtp(join(tmp.dir, 'unsigned.ctp'), { trust, mode });
      expect(r.decision).toBe('REJECT');
      expect(r.code).toBe('MISSING_ATTESTATION');
      expect(r.message).toBe('the bundle is not signed: it holds no attestations (sign it with ct sign, or build it with the CI step)');
    }
  });
  it('a swapped security/seccomp.json → DIGEST_MISMATCH', async () => {
    const p = await tampered('seccomp', (f) => f.set('security/seccomp.json', Buffer.from(SECCOMP.replace('SCMP_ACT_ERRNO', 'SCMP_ACT_ALLOW'))));
    const r = await verifyCtp(p, { trust, mode: 'audit' });
    expect(r.code).toBe('DIGEST_MISMATCH');
    expect(r.decision).toBe('REJECT');
  });
  it('an edited manifest.toml ([runtime] capability raised) → DIGEST_MISMATCH', async () => {
    const p = await tampered('manifest', (f) => f.set('manifest.toml', Buffer.from(f.get('manifest.toml')!.toString().replace('capabilities = []', 'capabilities = ["CAP_SYS_ADMIN"]'))));
    expect((await readFile(p)).includes(Buffer.from('CAP_SYS_ADMIN'))).toBe(true);
    expect((await verifyCtp(p, { trust })).code).toBe('DIGEST_MISMATCH');
  });
  it('a file added outside covered paths → UNCOVERED_FILE', async () => {
    const p = await tampered('added', (f) => f.set('security/apparmor', Buffer.from('profile x {}\n')));
    expect((await verifyCtp(p, { trust })).code).toBe('UNCOVERED_FILE');
    const q = await tampered('added-root', (f) => f.set('README', Buffer.from('hi')));
    expect((await verifyCtp(q, { trust })).code).toBe('UNCOVERED_FILE');
  });
  it('a signed security file removed → DIGEST_MISMATCH', async () => {
    const p = await tampered('removed', (f) => f.delete('security/seccomp.json'));
    expect((await verifyCtp(p, { trust })).code).toBe('DIGEST_MISMATCH');
  });
  it('a changed layer blob → DIGEST_MISMATCH (OCI layout)', async () => {
    const p = await tampered('blob', (f) => {
      const name = [...f.keys()].find((n) => n.startsWith('oci-layout/blobs/') && f.get(n)!.includes(Buffer.from('hello')))!;
      const b = Buffer.from(f.get(name)!);
      b[b.indexOf('hello')] ^= 1;
      f.set(name, b);
    });
    expect((await verifyCtp(p, { trust })).code).toBe('DIGEST_MISMATCH');
  });
  it('an extra file under attestations/ is unsigned content (#13 finding 5), no longer a warning', async () => {
    const p = await tampered('extra-att', (f) => f.set('attestations/notes.txt', Buffer.from('x')));
    const r = await verifyCtp(p, { trust });
    expect({ decision: r.decision, code: r.code }).toEqual({ decision: 'REJECT', code: 'UNSIGNED_CONTENT' });
  });
  it('not a tar → a malformed-bundle code, never a throw', async () => {
    const p = join(tmp.dir, 'garbage.ctp');
    await writeFile(p, 'This is not a valid tarball\n');
    const r = await verifyCtp(p, { trust });
    expect(r.decision).toBe('REJECT');
    expect(r.code).toMatch(/^(TAR_MALFORMED|MALFORMED_BUNDLE|MANIFEST_INVALID)$/);
  });
  it('caches by bundle, image, trust store and policy; a revocation drops the entry', async () => {
    const cache = new VerificationCache();
    const a = await verifyCtp(signed, { trust, cache });
    const b = await verifyCtp(signed, { trust, cache });
    expect(cache.hits).toBe(1);
    expect(b.decision).toBe(a.decision);
    await verifyCtp(signed, { trust, cache, mode: 'permissive' });
    expect(cache.misses).toBe(2);
    const revoked = trustOf(makeStore({ signers: [{ key: signer }], logs: [logA, logB], revoked: { keys: [signer.keyId] } }));
    const c = await verifyCtp(signed, { trust: revoked, cache });
    expect(c.code).toBe('REVOKED_KEY');
    expect(cache.size).toBe(1);
    expect(cache.revoke([c.record.bundleDigest!])).toBe(1);
  });
});

describe('verifyCtp: bytes outside every digest', () => {
  it('non-zero tar padding → TAR_MALFORMED (uncompressed file and buffer)', async () => {
    const bytes = await readFile(signed);
    const a = await openCtp(bytes);
    const e = a.entries.get('security/seccomp.json')!;
    const at = e.dataOffset + e.size;
    expect(at % 512).not.toBe(0);
    const b = Buffer.from(bytes);
    b[at] = 0x20;
    const p = join(tmp.dir, 'padding.ctp');
    await writeFile(p, b);
    expect((await verifyCtp(p, { trust })).code).toBe('TAR_MALFORMED');
    expect((await verifyCtp(b, { trust })).code).toBe('TAR_MALFORMED');
  });
  it('a gzip-compressed signed .ctp verifies (padding checked over the decompressed stream)', async () => {
    const p = join(tmp.dir, 'signed-gz.ctp');
    await rewriteCtp(signed, p, { gzip: true });
    const r = await verifyCtp(p, { trust });
    expect(r.decision).toBe('ALLOW');
    expect(r.record.bundleDigest).not.toBe((await verifyCtp(signed, { trust })).record.bundleDigest);
  });
  it('index.json edited (annotation) → DIGEST_MISMATCH, since ct sign names it', async () => {
    const p = await tampered('index', (f) => {
      const idx = JSON.parse(f.get('oci-layout/index.json')!.toString()) as { manifests: { annotations?: Record<string, string> }[] };
      idx.manifests[0].annotations = { 'org.opencontainers.image.ref.name': 'evil' };
      f.set('oci-layout/index.json', Buffer.from(JSON.stringify(idx)));
    });
    expect((await verifyCtp(p, { trust })).code).toBe('DIGEST_MISMATCH');
  });
});
