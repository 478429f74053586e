import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { legacyManifestSha256, readLegacyCtp } from '../../src/bundle/legacy.js';
import { openCtp } from '../../src/bundle/read.js';
import { unpackCtp } from '../../src/bundle/unpack.js';
import { checkOciLayout } from '../../src/bundle/check-layout.js';
import { keyIdOf } from '../../src/trust/keyid.js';
import { repoRoot, runCt } from '../support/cli.js';
import { rawEntry, rawTar, sha256hex, withoutEnd } from './tar-fixtures.js';

let tmp: string;
const keys = generateKeyPairSync('ed25519');
const other = generateKeyPairSync('ed25519');
const manifestText = 'ctp_version = "1.0"\r\n[metadata]\nname = "legacy"\nversion = "0.1.0"'; // CRLF line, no final LF

function legacyBundle(opts: { hash?: string; signWith?: typeof keys.privateKey; badSig?: boolean; keyId?: string } = {}): Buffer {
  const digest = opts.hash ?? legacyManifestSha256(Buffer.from(manifestText));
  let signature = sign(null, Buffer.from(digest, 'ascii'), opts.signWith ?? keys.privateKey).toString('hex');
  if (opts.badSig) signature = `${signature.slice(0, 10)}${signature[10] === '0' ? '1' : '0'}${signature.slice(11)}`;
  const summary = {
    ctp_version: '1.0',
    content: { manifest_sha256: digest },
    attestations: [{ type: 'signature', suite: 'CT-SIG-01', signature, ...(opts.keyId ? { key_id: opts.keyId } : {}) }],
  };
  return rawTar([
    { name: 'manifest.ctp', data: manifestText },
    { name: 'summary.json', data: JSON.stringify(summary) },
  ]);
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'ct-bundle-cli-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('legacy ctp_version 1.0 bundles', () => {
  it('hashes the manifest line by line with LF appended to each line', () => {
    expect(legacyManifestSha256(Buffer.from('a\r\nb'))).toBe(sha256hex('a\r\nb\n'));
    expect(legacyManifestSha256(Buffer.from('a\nb\n'))).toBe(sha256hex('a\nb\n'));
  });

  it('reads a good bundle and verifies its CT-SIG-01 signature with a trusted key', async () => {
    const l = await readLegacyCtp(legacyBundle({ keyId: keyIdOf(keys.publicKey) }), [keys.publicKey]);
    expect(l.legacy).toBe(true);
    expect(l.verified).toBe(true);
    expect(l.signatures[0].verifiedBy).toBe(keyIdOf(keys.publicKey));
    expect(l.manifestText).toBe(manifestText);
  });

  it('a manifest hash that does not match → DIGEST_MISMATCH', async () => {
    await expect(readLegacyCtp(legacyBundle({ hash: 'a'.repeat(64) }))).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
  });

  it('a bad signature → INVALID_SIGNATURE; a signature by an untrusted key → INVALID_SIGNATURE / UNKNOWN_KEY', async () => {
    await expect(readLegacyCtp(legacyBundle({ badSig: true }), [keys.publicKey])).rejects.toMatchObject({ code: 'INVALID_SIGNATURE' });
    await expect(readLegacyCtp(legacyBundle({ signWith: other.privateKey }), [keys.publicKey])).rejects.toMatchObject({ code: 'INVALID_SIGNATURE' });
    await expect(readLegacyCtp(legacyBundle({ signWith: other.privateKey, keyId: keyIdOf(other.publicKey) }), [keys.publicKey])).rejects.toMatchObject({ code: 'UNKNOWN_KEY' });
  });

  it('openCtp recognises a legacy bundle and refuses it with UNSUPPORTED_VERSION', async () => {
    await expect(openCtp(legacyBundle())).rejects.toMatchObject({ code: 'UNSUPPORTED_VERSION', details: { legacy: true } });
  });

  it('legacy bundles get the same hostile-input checks', async () => {
    const evil = Buffer.concat([withoutEnd(legacyBundle()), rawEntry({ name: '../../x', data: 'x' }), Buffer.alloc(1024)]);
    await expect(readLegacyCtp(evil)).rejects.toMatchObject({ code: 'TAR_UNSAFE_PATH' });
  });
});

describe('ct pack / inspect / unpack (CLI)', () => {
  it('packs the example, inspects it as JSON and unpacks it with its rootfs', async () => {
    const out = join(tmp, 'hello.ctp');
    const p = await runCt(['pack', join(repoRoot, 'examples', 'hello'), '-o', out]);
    expect(p.code).toBe(0);
    expect(p.stdout.trim()).toMatch(/^sha256:[0-9a-f]{64}$/);
    const i = await runCt(['inspect', out, '--json']);
    expect(i.code).toBe(0);
    const report = JSON.parse(i.stdout);
    expect(report).toMatchObject({ format: 'ctp', name: 'hello', version: '1.0.0', bundleDigest: p.stdout.trim(), compressed: false, attestations: [] });
    expect(report.layers).toHaveLength(1);
    expect(report.files.map((f: { name: string }) => f.name)).toContain('manifest.toml');
    const human = await runCt(['inspect', out]);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(report.imageDigest);
    const dir = join(tmp, 'unpacked');
    const u = await runCt(['unpack', out, '-o', dir, '--rootfs']);
    expect(u.code).toBe(0);
    expect(await readFile(join(dir, 'manifest.toml'), 'utf8')).toContain('name = "hello"');
    expect(await readFile(join(dir, 'rootfs', 'share', 'hello', 'message.txt'), 'utf8')).toContain('ct pack');
  });

  it('inspect reports a legacy bundle as such', async () => {
    const f = join(tmp, 'legacy.ctp');
    await writeFile(f, legacyBundle());
    const i = await runCt(['inspect', f, '--json']);
    expect(i.code).toBe(0);
    expect(JSON.parse(i.stdout)).toMatchObject({ format: 'ctp-legacy', ctpVersion: '1.0' });
  });

  it('malformed bundles exit 10, digest mismatches 1, missing files 11', async () => {
    const good = join(tmp, 'hello.ctp');
    const bytes = await readFile(good);
    const evil = join(tmp, 'evil.ctp');
    await writeFile(evil, Buffer.concat([withoutEnd(bytes), rawEntry({ name: 'security/x', type: '2', linkpath: '/etc/shadow' }), Buffer.alloc(1024)]));
    const r1 = await runCt(['inspect', evil]);
    expect(r1.code).toBe(10);
    expect(r1.stderr).toContain('TAR_UNSAFE_LINK');
    const trunc = join(tmp, 'trunc.ctp');
    await writeFile(trunc, bytes.subarray(0, 2000));
    expect((await runCt(['unpack', trunc, '-o', join(tmp, 'never')])).code).toBe(10);
    expect(await readdir(tmp)).not.toContain('never');
    // A blob whose content no longer matches its name: hash mismatch, exit 1.
    const a = await openCtp(good);
    const config = a.entries.get(`oci-layout/blobs/sha256/${checkOciLayout(a).configDigest.slice(7)}`)!;
    const tampered = Buffer.from(bytes);
    tampered[config.dataOffset + 100] ^= 0x01;
    const t = join(tmp, 'tampered.ctp');
    await writeFile(t, tampered);
    const r2 = await runCt(['inspect', t]);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain('DIGEST_MISMATCH');
    expect((await runCt(['inspect', join(tmp, 'nope.ctp')])).code).toBe(11);
  });

  it('unpack refuses to extract through a symlinked or non-empty target', async () => {
    const good = join(tmp, 'hello.ctp');
    const real = join(tmp, 'real');
    await mkdir(real);
    const link = join(tmp, 'link');
    await symlink(real, link);
    expect((await runCt(['unpack', good, '-o', link])).code).toBe(11);
    expect(await readdir(real)).toEqual([]);
    await writeFile(join(real, 'keep'), 'x');
    await expect(unpackCtp(good, real)).rejects.toMatchObject({ code: 'IO_ERROR' });
    expect(await readdir(real)).toEqual(['keep']);
  });

  it('pack without a name or version is a usage error; --name/--version reach pack', async () => {
    const dir = join(tmp, 'noname');
    await mkdir(dir);
    await writeFile(join(dir, 'f'), 'x');
    const r = await runCt(['pack', dir, '-o', join(tmp, 'noname.ctp')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('USAGE');
    const ok = await runCt(['pack', dir, '--name', 'named', '--version', '1.2', '-o', join(tmp, 'named.ctp'), '--json']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).bundleDigest).toMatch(/^sha256:/);
    const a = await openCtp(join(tmp, 'named.ctp'));
    expect([a.manifest.name, a.manifest.version]).toEqual(['named', '1.2']);
  });
});
