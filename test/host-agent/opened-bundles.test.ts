// The host's cache of bundles it already read and hashed (host/agent/opened-bundles.ts): used only
// while the file is the very one that was read; any change to it, in place or by a new download,
// and it is read and hashed again.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, renameSync, rmSync, statSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packCtp } from '../../src/bundle/pack/pack.js';
import { OpenedBundles } from '../../host/agent/opened-bundles.js';
import { openCtp } from '../../src/bundle/read.js';

let dir: string;
let ctp: string;
let digest: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ct-opened-'));
  const app = join(dir, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'ct.toml'), 'name = "o"\nversion = "1.0.0"\n\n[runtime]\ncommand = ["/x"]\n');
  writeFileSync(join(app, 'x'), 'hello\n');
  ctp = join(dir, 'o.ctp');
  await packCtp({ from: { dir: app }, out: ctp, mtime: 0 });
  digest = (await openCtp(ctp)).bundleDigest;
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('OpenedBundles', () => {
  it('reuses what it read from the same file, and reads again after a change in place with the times put back', async () => {
    const path = join(dir, 'a.ctp');
    copyFileSync(ctp, path);
    const cache = new OpenedBundles();
    const first = await cache.open(path, digest);
    expect(first.bundleDigest).toBe(digest);
    expect(await cache.open(path, digest)).toBe(first);
    expect(cache.hits).toBe(1);
    const st = statSync(path);
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.from('X'), 0, 1, 700);
    closeSync(fd);
    utimesSync(path, st.atime, st.mtime);
    const changed = await cache.open(path, digest);
    expect(changed).not.toBe(first);
    expect(changed.bundleDigest).not.toBe(digest);
    expect({ hits: cache.hits, size: cache.size }).toEqual({ hits: 1, size: 0 }); // other bytes are not kept under the digest
  });

  it('reads a re-downloaded file again (new inode, same bytes), and keeps nothing for a digest the bytes do not have', async () => {
    const path = join(dir, 'b.ctp');
    copyFileSync(ctp, path);
    const cache = new OpenedBundles();
    const first = await cache.open(path, digest);
    copyFileSync(ctp, `${path}.tmp`);
    renameSync(`${path}.tmp`, path);
    const again = await cache.open(path, digest);
    expect(again).not.toBe(first);
    expect(again.bundleDigest).toBe(digest);
    expect(cache.hits).toBe(0);
    const wrong = `sha256:${'0'.repeat(64)}`;
    await cache.open(path, wrong);
    await cache.open(path, wrong);
    expect(cache.hits).toBe(0);
    await expect(cache.open(join(dir, 'absent.ctp'), digest)).rejects.toMatchObject({ code: 'IO_ERROR' });
  });

  it('holds at most its number of bundles, least recently used out first; one entry per digest', async () => {
    const cache = new OpenedBundles(2);
    const bundles: { path: string; digest: string }[] = [];
    for (let i = 0; i < 3; i++) {
      const app = join(dir, `app${i}`);
      mkdirSync(app);
      writeFileSync(join(app, 'ct.toml'), `name = "o${i}"\nversion = "1.0.0"\n\n[runtime]\ncommand = ["/x"]\n`);
      writeFileSync(join(app, 'x'), `hello ${i}\n`);
      const path = join(dir, `v${i}.ctp`);
      await packCtp({ from: { dir: app }, out: path, mtime: 0 });
      bundles.push({ path, digest: (await openCtp(path)).bundleDigest });
    }
    const [b0, b1, b2] = bundles;
    await cache.open(b0.path, b0.digest);
    await cache.open(b1.path, b1.digest);
    await cache.open(b0.path, b0.digest); // b0 used last: b1 goes first
    await cache.open(b2.path, b2.digest);
    expect({ size: cache.size, hits: cache.hits }).toEqual({ size: 2, hits: 1 });
    await cache.open(b0.path, b0.digest);
    await cache.open(b2.path, b2.digest);
    expect(cache.hits).toBe(3);
    await cache.open(b1.path, b1.digest);
    expect(cache.hits).toBe(3);
    // The same bytes under another file name: one entry for the digest, following the last file read.
    const twin = join(dir, 'twin.ctp');
    copyFileSync(b1.path, twin);
    await cache.open(twin, b1.digest);
    expect(cache.size).toBe(2);
    await cache.open(twin, b1.digest);
    expect(cache.hits).toBe(4);
  });

  it('a kept archive whose manifest was parsed before is still refused by a verification that does not cover it', async () => {
    const cache = new OpenedBundles();
    const path = join(dir, 'm.ctp');
    copyFileSync(ctp, path);
    const archive = await cache.open(path, digest);
    const sha = `sha256:${archive.entries.get('manifest.toml')!.sha256}`;
    expect(archive.authenticateManifest({ 'manifest.toml': sha }).name).toBe('o');
    // Another trust store's verification covers other subjects: the earlier parse does not stand in.
    expect(() => archive.authenticateManifest({})).toThrow(expect.objectContaining({ code: 'UNCOVERED_FILE' }));
    expect(() => archive.authenticateManifest({ 'manifest.toml': `sha256:${'1'.repeat(64)}` })).toThrow(expect.objectContaining({ code: 'UNCOVERED_FILE' }));
  });
});
