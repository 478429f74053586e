import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { chmod, lstat, mkdir, mkdtemp, open, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { applyLayers } from '../../src/bundle/apply-layers.js';
import { packCtp } from '../../src/bundle/pack/pack.js';
import { openCtp } from '../../src/bundle/read.js';
import { checkOciLayout } from '../../src/bundle/check-layout.js';
import { repoRoot } from '../support/cli.js';
import { rawTar, sha256hex, writeOciLayout, type RawEntry } from './tar-fixtures.js';

let tmp: string;
let n = 0;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'ct-bundle-apply-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function layout(...layers: RawEntry[][]): Promise<string> {
  const dir = join(tmp, `layout${n++}`);
  await writeOciLayout(dir, layers.map((l) => rawTar(l)));
  return dir;
}

const exists = (p: string): Promise<boolean> => lstat(p).then(() => true, () => false);

describe('applyLayers', () => {
  it('applies layers in order with whiteouts and opaque directories', async () => {
    const dir = await layout(
      [
        { name: 'etc/', type: '5' },
        { name: 'etc/a', data: 'a' },
        { name: 'etc/b', data: 'b' },
        { name: 'var/x/', type: '5' },
        { name: 'var/x/1', data: '1' },
        { name: 'var/x/sub/', type: '5' },
        { name: 'var/x/sub/deep', data: 'd' },
      ],
      [
        { name: 'etc/.wh.a' },
        { name: 'var/x/.wh..wh..opq' },
        { name: 'var/x/2', data: '2', mode: 0o755 },
        { name: './etc/c', data: 'c' },
      ],
    );
    const root = join(tmp, `root${n++}`);
    const r = await applyLayers(dir, root);
    expect(r.layers).toHaveLength(2);
    expect(await exists(join(root, 'etc', 'a'))).toBe(false);
    expect(await readFile(join(root, 'etc', 'b'), 'utf8')).toBe('b');
    expect(await readFile(join(root, 'etc', 'c'), 'utf8')).toBe('c');
    expect((await readdir(join(root, 'var', 'x'))).sort()).toEqual(['2']);
    expect((await stat(join(root, 'var', 'x', '2'))).mode & 0o777).toBe(0o755);
    expect(await exists(join(root, 'etc', '.wh.a'))).toBe(false);
  });

  it('refuses to write through a symlink planted by an earlier layer, leaving nothing behind', async () => {
    const outside = join(tmp, `outside${n++}`);
    await mkdir(outside);
    const dir = await layout([{ name: 'evil', type: '2', linkpath: outside }], [{ name: 'evil/pwned', data: 'gotcha' }]);
    const root = join(tmp, `root${n++}`);
    await expect(applyLayers(dir, root)).rejects.toMatchObject({ code: 'TAR_UNSAFE_LINK' });
    expect(await readdir(outside)).toEqual([]);
    expect(await exists(root)).toBe(false);
    expect((await readdir(tmp)).filter((f) => f.startsWith(`.root`))).toEqual([]);
  });

  it('refuses a relative symlink escape within one layer too', async () => {
    const dir = await layout([{ name: 'a/', type: '5' }, { name: 'a/up', type: '2', linkpath: '../../../../..' }, { name: 'a/up/tmp/x', data: 'x' }]);
    await expect(applyLayers(dir, join(tmp, `root${n++}`))).rejects.toMatchObject({ code: 'TAR_UNSAFE_LINK' });
  });

  it('replaces (never follows) a symlink at the final component', async () => {
    const victim = join(tmp, `victim${n++}`);
    await writeFile(victim, 'original');
    const dir = await layout([{ name: 'x', type: '2', linkpath: victim }], [{ name: 'x', data: 'new content' }]);
    const root = join(tmp, `root${n++}`);
    await applyLayers(dir, root);
    expect(await readFile(victim, 'utf8')).toBe('original');
    expect((await lstat(join(root, 'x'))).isFile()).toBe(true);
  });

  it('never carries a directory mode through a symlink that replaced the directory (a host directory stays as it was)', async () => {
    const outside = join(tmp, `outside${n++}`);
    await mkdir(join(outside, 'victim'), { recursive: true, mode: 0o700 });
    await chmod(join(outside, 'victim'), 0o700);
    // x/ and x/victim/ (0777, setgid), then x replaced by a symlink to the host directory, in one
    // layer and across two: the recorded mode of x/victim must not reach outside/victim.
    const one = await layout([{ name: 'x/', type: '5' }, { name: 'x/victim/', type: '5', mode: 0o2777 }, { name: 'x', type: '2', linkpath: outside }]);
    const two = await layout([{ name: 'x/', type: '5' }, { name: 'x/victim/', type: '5', mode: 0o2777 }], [{ name: '.wh.x' }, { name: 'x', type: '2', linkpath: outside }]);
    for (const dir of [one, two]) {
      const root = join(tmp, `root${n++}`);
      await applyLayers(dir, root);
      expect((await lstat(join(root, 'x'))).isSymbolicLink()).toBe(true);
      expect((await stat(join(outside, 'victim'))).mode & 0o7777).toBe(0o700);
    }
    // A directory that stays gets its mode, set on the directory itself.
    const kept = await layout([{ name: 'x/', type: '5', mode: 0o750 }, { name: 'x/victim/', type: '5', mode: 0o2775 }]);
    const root = join(tmp, `root${n++}`);
    await applyLayers(kept, root);
    expect((await stat(join(root, 'x', 'victim'))).mode & 0o7777).toBe(0o2775);
    expect((await stat(join(root, 'x'))).mode & 0o7777).toBe(0o750);
  });

  it('allows hard links inside the rootfs and refuses escaping ones', async () => {
    const ok = await layout([{ name: 'a', data: 'same' }, { name: 'b', type: '1', linkpath: 'a' }]);
    const root = join(tmp, `root${n++}`);
    await applyLayers(ok, root);
    expect((await stat(join(root, 'b'))).ino).toBe((await stat(join(root, 'a'))).ino);
    const escape = await layout([{ name: 'h', type: '1', linkpath: '../../etc/passwd' }]);
    await expect(applyLayers(escape, join(tmp, `root${n++}`))).rejects.toMatchObject({ code: 'TAR_UNSAFE_LINK' });
    const abs = await layout([{ name: 'h', type: '1', linkpath: '/etc/passwd' }]);
    await expect(applyLayers(abs, join(tmp, `root${n++}`))).rejects.toMatchObject({ code: 'TAR_UNSAFE_LINK' });
    const viaSymlink = await layout([{ name: 's', type: '2', linkpath: '/etc/passwd' }, { name: 'h', type: '1', linkpath: 's' }]);
    await expect(applyLayers(viaSymlink, join(tmp, `root${n++}`))).rejects.toMatchObject({ code: 'TAR_UNSAFE_LINK' });
  });

  it('refuses absolute and ".." names', async () => {
    await expect(applyLayers(await layout([{ name: '/etc/x', data: 'x' }]), join(tmp, `root${n++}`))).rejects.toMatchObject({ code: 'TAR_UNSAFE_PATH' });
    await expect(applyLayers(await layout([{ name: 'a/../../x', data: 'x' }]), join(tmp, `root${n++}`))).rejects.toMatchObject({ code: 'TAR_UNSAFE_PATH' });
    await expect(applyLayers(await layout([{ name: 'a/.wh...', data: '' }]), join(tmp, `root${n++}`))).rejects.toMatchObject({ code: 'TAR_UNSAFE_PATH' });
  });

  it('skips and reports device nodes and FIFOs', async () => {
    const root = join(tmp, `root${n++}`);
    const r = await applyLayers(await layout([{ name: 'dev/', type: '5' }, { name: 'dev/null', type: '3' }, { name: 'dev/fifo', type: '6' }, { name: 'ok', data: 'ok' }]), root);
    expect(r.skipped.map((s) => [s.name, s.type])).toEqual([
      ['dev/null', 'chardev'],
      ['dev/fifo', 'fifo'],
    ]);
    expect(await readdir(join(root, 'dev'))).toEqual([]);
    expect(await readFile(join(root, 'ok'), 'utf8')).toBe('ok');
  });

  it('enforces entry limits', async () => {
    const dir = await layout([{ name: 'a', data: '' }, { name: 'b', data: '' }, { name: 'c', data: '' }]);
    await expect(applyLayers(dir, join(tmp, `root${n++}`), { limits: { maxEntries: 2 } })).rejects.toMatchObject({ code: 'TAR_LIMIT_EXCEEDED' });
  });

  it('hashes what it extracts: a layer swapped on disk (same size) → DIGEST_MISMATCH, no rootfs', async () => {
    const layer = rawTar([{ name: 'bin/', type: '5' }, { name: 'bin/app', data: 'good program' }]);
    const dir = join(tmp, `layout${n++}`);
    await writeOciLayout(dir, [layer]);
    await writeFile(join(dir, 'blobs', 'sha256', sha256hex(layer)), rawTar([{ name: 'bin/', type: '5' }, { name: 'bin/app', data: 'evil program' }]));
    const root = join(tmp, `root${n++}`);
    await expect(applyLayers(dir, root)).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
    expect(await exists(root)).toBe(false);
  });

  it('applies a gzip layer from a layout', async () => {
    const dir = join(tmp, `layout${n++}`);
    await writeOciLayout(dir, [gzipSync(rawTar([{ name: 'z', data: 'zipped' }]))]);
    const root = join(tmp, `root${n++}`);
    await applyLayers(dir, root);
    expect(await readFile(join(root, 'z'), 'utf8')).toBe('zipped');
  });

  it('builds the rootfs of a packed bundle (gzip layer, modes, ct.toml left out)', async () => {
    const out = join(tmp, 'hello.ctp');
    await packCtp({ from: { dir: join(repoRoot, 'examples', 'hello') }, out });
    const archive = await openCtp(out);
    const root = join(tmp, `root${n++}`);
    await applyLayers(archive, root);
    expect(await readFile(join(root, 'share', 'hello', 'message.txt'), 'utf8')).toContain('ct pack');
    expect((await stat(join(root, 'bin', 'hello'))).mode & 0o777).toBe(0o755);
    expect(await exists(join(root, 'ct.toml'))).toBe(false);
  });

  it('streams big layers from the .ctp and re-hashes them: a bundle changed after it was opened → DIGEST_MISMATCH', async () => {
    const big = Buffer.alloc(5 * 1024 * 1024, 7);
    const dir = join(tmp, `layout${n++}`);
    await writeOciLayout(dir, [rawTar([{ name: 'big', data: big }])]);
    const out = join(tmp, 'big.ctp');
    await packCtp({ from: { ociLayout: dir }, out, name: 'big', version: '1' });
    const archive = await openCtp(out);
    const layer = archive.entries.get(`oci-layout/blobs/sha256/${checkOciLayout(archive).layers[0].digest.slice(7)}`)!;
    expect(layer.data).toBeUndefined();
    const root = join(tmp, `root${n++}`);
    await applyLayers(archive, root);
    expect((await stat(join(root, 'big'))).size).toBe(big.length);
    // Flip one content byte of the layer inside the .ctp after it was opened and checked.
    const fh = await open(out, 'r+');
    await fh.write(Buffer.from([8]), 0, 1, layer.dataOffset + 512 + 1000);
    await fh.close();
    const root2 = join(tmp, `root${n++}`);
    await expect(applyLayers(archive, root2)).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
    expect(await exists(root2)).toBe(false);
  });

  it('streams big layers out of a gzip-compressed .ctp too', async () => {
    const big = Buffer.alloc(6 * 1024 * 1024, 3);
    const dir = join(tmp, `layout${n++}`);
    await writeOciLayout(dir, [rawTar([{ name: 'big', data: big }, { name: 'after', data: 'tail' }])]);
    const out = join(tmp, 'big-gz.ctp');
    await packCtp({ from: { ociLayout: dir }, out, name: 'big', version: '1', gzip: true });
    const archive = await openCtp(out);
    expect(archive.compressed).toBe(true);
    const root = join(tmp, `root${n++}`);
    await applyLayers(archive, root);
    expect((await stat(join(root, 'big'))).size).toBe(big.length);
    expect(await readFile(join(root, 'after'), 'utf8')).toBe('tail');
  });
});
