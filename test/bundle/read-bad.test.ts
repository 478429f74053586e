import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { packCtp } from '../../src/bundle/pack/pack.js';
import { openCtp } from '../../src/bundle/read.js';
import { checkOciLayout } from '../../src/bundle/check-layout.js';
import { writeCtp } from '../../src/bundle/write.js';
import type { CtpArchive } from '../../src/bundle/archive.js';
import { repoRoot } from '../support/cli.js';
import { rawEntry, rawTar, withoutEnd, type RawEntry } from './tar-fixtures.js';

let tmp: string;
let good: Buffer;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'ct-bundle-bad-'));
  const out = join(tmp, 'good.ctp');
  await packCtp({ from: { dir: join(repoRoot, 'examples', 'hello') }, out });
  good = await readFile(out);
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** The good bundle with extra raw entries appended before its end-of-archive marker. */
const withEntries = (...entries: RawEntry[]): Buffer => Buffer.concat([withoutEnd(good), ...entries.map(rawEntry), Buffer.alloc(1024)]);

function pax(records: Record<string, string>): RawEntry {
  let body = '';
  for (const [k, v] of Object.entries(records)) {
    const rec = ` ${k}=${v}\n`;
    let len = rec.length + 2;
    while (String(len).length + rec.length !== len) len = String(len).length + rec.length;
    body += `${len}${rec}`;
  }
  return { name: 'PaxHeader/x', type: 'x', data: body };
}

async function filesOf(a: CtpArchive): Promise<Map<string, Buffer>> {
  const m = new Map<string, Buffer>();
  for (const [n] of a.entries) m.set(n, a.file(n));
  return m;
}

describe('openCtp accepts', () => {
  it('the packed bundle, from a path and from a buffer, with the same digest', async () => {
    const a = await openCtp(good);
    const b = await openCtp(join(tmp, 'good.ctp'));
    expect(a.bundleDigest).toBe(b.bundleDigest);
    expect(a.blobDigests()).toHaveLength(3);
  });
  it('zero padding after the end-of-archive marker up to the 10240-byte record (GNU tar)', async () => {
    await expect(openCtp(Buffer.concat([good, Buffer.alloc(Math.ceil(good.length / 10240) * 10240 - good.length)]))).resolves.toBeDefined();
  });
});

describe('openCtp rejects hostile archives with a stable code', () => {
  const cases: [string, () => Buffer, string][] = [
    ['a "../" name', () => withEntries({ name: '../x', data: 'x' }), 'TAR_UNSAFE_PATH'],
    ['a nested ".." name', () => withEntries({ name: 'security/../../x', data: 'x' }), 'TAR_UNSAFE_PATH'],
    ['an absolute name', () => withEntries({ name: '/etc/passwd', data: 'x' }), 'TAR_UNSAFE_PATH'],
    ['a "./" prefixed name', () => withEntries({ name: './security/x', data: 'x' }), 'TAR_UNSAFE_PATH'],
    ['an empty path component', () => withEntries({ name: 'security//x', data: 'x' }), 'TAR_UNSAFE_PATH'],
    ['a symlink escaping', () => withEntries({ name: 'security/evil', type: '2', linkpath: '/etc/passwd' }), 'TAR_UNSAFE_LINK'],
    ['a harmless-looking symlink', () => withEntries({ name: 'security/ok', type: '2', linkpath: 'seccomp.json' }), 'TAR_UNSAFE_LINK'],
    ['a hard link escaping', () => withEntries({ name: 'security/hl', type: '1', linkpath: '../../etc/shadow' }), 'TAR_UNSAFE_LINK'],
    ['a character device', () => withEntries({ name: 'security/null', type: '3' }), 'TAR_DEVICE_NODE'],
    ['a FIFO', () => withEntries({ name: 'security/fifo', type: '6' }), 'TAR_DEVICE_NODE'],
    ['a duplicate name', () => withEntries({ name: 'manifest.toml', data: 'name = "evil"' }), 'TAR_DUPLICATE_ENTRY'],
    ['a file used as a directory', () => withEntries({ name: 'manifest.toml/x', data: 'x' }), 'TAR_DUPLICATE_ENTRY'],
    ['a pax path smuggling ".."', () => withEntries(pax({ path: '../../pax-escape' }), { name: 'innocent', data: 'x' }), 'TAR_UNSAFE_PATH'],
    ['a pax size that disagrees with the block layout', () => withEntries(pax({ size: '99999' }), { name: 'x', data: 'x' }), 'TAR_MALFORMED'],
    ['a bad header checksum', () => {
      const b = withEntries({ name: 'security/x', data: 'x' });
      const at = withoutEnd(good).length;
      b[at + 5] ^= 0x01;
      return b;
    }, 'TAR_MALFORMED'],
    ['a truncated tar (inside an entry)', () => good.subarray(0, 1500), 'TAR_MALFORMED'],
    ['a tar without its end-of-archive marker', () => withoutEnd(good), 'TAR_MALFORMED'],
    ['a lone zero block then more entries', () => Buffer.concat([withoutEnd(good), Buffer.alloc(512), rawEntry({ name: 'x', data: 'x' }), Buffer.alloc(1024)]), 'TAR_MALFORMED'],
    ['trailing garbage after the marker', () => Buffer.concat([good, Buffer.from('garbage')]), 'TRAILING_DATA'],
    ['a random file', () => Buffer.from('this is not a tar archive at all, just text'.repeat(40)), 'TAR_MALFORMED'],
    ['an empty file', () => Buffer.alloc(0), 'TAR_MALFORMED'],
    ['a truncated gzip', () => {
      const z = gzipSync(good);
      return z.subarray(0, z.length - 100);
    }, 'GZIP_MALFORMED'],
    ['gzip with garbage after it', () => Buffer.concat([gzipSync(good), Buffer.from('garbage!')]), 'TRAILING_DATA'],
    ['zeros beyond the tar record after the marker', () => Buffer.concat([good, Buffer.alloc(Math.ceil(good.length / 10240) * 10240 - good.length + 512)]), 'TRAILING_DATA'],
    ['corrupt gzip data', () => {
      const z = Buffer.from(gzipSync(good));
      z[Math.floor(z.length / 2)] ^= 0xff;
      return z;
    }, 'GZIP_MALFORMED'],
  ];
  for (const [what, make, code] of cases) {
    it(`${what} → ${code}`, async () => {
      await expect(openCtp(make())).rejects.toMatchObject({ code });
    });
  }

  it('a gzip bundle carrying a hostile entry → same code as uncompressed', async () => {
    await expect(openCtp(gzipSync(withEntries({ name: '../x', data: 'x' })))).rejects.toMatchObject({ code: 'TAR_UNSAFE_PATH' });
  });

  it('100k tiny entries → TAR_LIMIT_EXCEEDED (default entry limit)', async () => {
    const entries: Buffer[] = [];
    for (let i = 0; i < 100_000; i++) entries.push(rawEntry({ name: `security/f${i}`, data: '' }));
    const t0 = Date.now();
    await expect(openCtp(Buffer.concat([...entries, Buffer.alloc(1024)]))).rejects.toMatchObject({ code: 'TAR_LIMIT_EXCEEDED', details: { limit: 'maxEntries' } });
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('per-entry size, total size and name length limits → TAR_LIMIT_EXCEEDED', async () => {
    await expect(openCtp(good, { maxEntryBytes: 100 })).rejects.toMatchObject({ code: 'TAR_LIMIT_EXCEEDED', details: { limit: 'maxEntryBytes' } });
    await expect(openCtp(good, { maxTotalBytes: 4096 })).rejects.toMatchObject({ code: 'TAR_LIMIT_EXCEEDED', details: { limit: 'maxTotalBytes' } });
    const long = withEntries(pax({ path: `security/${'n'.repeat(2000)}` }), { name: 'security/short', data: 'x' });
    await expect(openCtp(long)).rejects.toMatchObject({ code: 'TAR_LIMIT_EXCEEDED' });
  });

  it('reports where: the entry name and its offset', async () => {
    const b = withEntries({ name: '../x', data: 'x' });
    const err = (await openCtp(b).catch((e) => e)) as { details: { name: string } ; message: string };
    expect(err.details.name).toBe('../x');
    expect(err.message).toContain(`offset ${withoutEnd(good).length}`);
  });
});

describe('openCtp checks manifest.toml and the layout marker files', () => {
  it('missing or invalid manifest.toml → MANIFEST_INVALID', async () => {
    const files = await filesOf(await openCtp(good));
    files.delete('manifest.toml');
    await writeCtp(join(tmp, 'noman.ctp'), files);
    await expect(openCtp(join(tmp, 'noman.ctp'))).rejects.toMatchObject({ code: 'MANIFEST_INVALID' });
    files.set('manifest.toml', Buffer.from('name = "x"\n'));
    await writeCtp(join(tmp, 'badman.ctp'), files);
    await expect(openCtp(join(tmp, 'badman.ctp'))).rejects.toMatchObject({ code: 'MANIFEST_INVALID' });
  });
  it('an unsupported image layout version → UNSUPPORTED_VERSION; no index.json → OCI_LAYOUT_INVALID', async () => {
    const files = await filesOf(await openCtp(good));
    files.set('oci-layout/oci-layout', Buffer.from('{"imageLayoutVersion":"2.0.0"}'));
    await writeCtp(join(tmp, 'v2.ctp'), files);
    await expect(openCtp(join(tmp, 'v2.ctp'))).rejects.toMatchObject({ code: 'UNSUPPORTED_VERSION' });
    const f2 = await filesOf(await openCtp(good));
    f2.delete('oci-layout/index.json');
    await writeCtp(join(tmp, 'noindex.ctp'), f2);
    await expect(openCtp(join(tmp, 'noindex.ctp'))).rejects.toMatchObject({ code: 'OCI_LAYOUT_INVALID' });
  });
});

describe('checkOciLayout', () => {
  it('catches a modified blob (content no longer hashes to its name), naming the blob', async () => {
    const a = await openCtp(good);
    const image = checkOciLayout(a);
    const files = await filesOf(a);
    const name = `oci-layout/blobs/sha256/${image.layers[0].digest.slice(7)}`;
    const tampered = Buffer.from(files.get(name)!);
    tampered[tampered.length - 1] ^= 0x01;
    files.set(name, tampered);
    await writeCtp(join(tmp, 'tampered.ctp'), files);
    const t = await openCtp(join(tmp, 'tampered.ctp'));
    expect(() => checkOciLayout(t)).toThrow(expect.objectContaining({ code: 'DIGEST_MISMATCH', details: expect.objectContaining({ path: name }) }));
  });

  it('catches a wrong image_digest in manifest.toml', async () => {
    const files = await filesOf(await openCtp(good));
    const text = files.get('manifest.toml')!.toString().replace(/image_digest = "sha256:[0-9a-f]{64}"/, `image_digest = "sha256:${'b'.repeat(64)}"`);
    files.set('manifest.toml', Buffer.from(text));
    await writeCtp(join(tmp, 'wrongdigest.ctp'), files);
    const a = await openCtp(join(tmp, 'wrongdigest.ctp'));
    expect(() => checkOciLayout(a)).toThrow(expect.objectContaining({ code: 'DIGEST_MISMATCH', details: expect.objectContaining({ field: 'image_digest' }) }));
  });

  it('catches a missing layer, a stray file and an ambiguous index', async () => {
    const a = await openCtp(good);
    const image = checkOciLayout(a);
    const f1 = await filesOf(a);
    f1.delete(`oci-layout/blobs/sha256/${image.layers[0].digest.slice(7)}`);
    await writeCtp(join(tmp, 'nolayer.ctp'), f1);
    await expect(openCtp(join(tmp, 'nolayer.ctp')).then(checkOciLayout)).rejects.toMatchObject({ code: 'OCI_LAYOUT_INVALID' });
    const f2 = await filesOf(a);
    f2.set('oci-layout/blobs/sha512/abc', Buffer.from('x'));
    await writeCtp(join(tmp, 'stray.ctp'), f2);
    await expect(openCtp(join(tmp, 'stray.ctp')).then(checkOciLayout)).rejects.toMatchObject({ code: 'OCI_LAYOUT_INVALID' });
    const f3 = await filesOf(a);
    const index = JSON.parse(f3.get('oci-layout/index.json')!.toString());
    index.manifests.push({ ...index.manifests[0], platform: { architecture: 'arm64', os: 'linux' } });
    f3.set('oci-layout/index.json', Buffer.from(JSON.stringify(index)));
    await writeCtp(join(tmp, 'two.ctp'), f3);
    const two = await openCtp(join(tmp, 'two.ctp'));
    expect(() => checkOciLayout(two)).toThrow(expect.objectContaining({ code: 'OCI_LAYOUT_INVALID' }));
    expect(checkOciLayout(two, { platform: { os: 'linux', architecture: 'amd64' } }).manifestDigest).toBe(two.manifest.image_digest);
  });
});

describe('raw tar helper sanity', () => {
  it('builds archives the reader accepts structurally', async () => {
    await writeFile(join(tmp, 'plain.tar'), rawTar([{ name: 'manifest.toml', data: 'x' }]));
    await expect(openCtp(join(tmp, 'plain.tar'))).rejects.toMatchObject({ code: 'MANIFEST_INVALID' });
  });
});
