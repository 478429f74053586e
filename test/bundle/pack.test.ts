import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { packCtp } from '../../src/bundle/pack/pack.js';
import { openCtp } from '../../src/bundle/read.js';
import { checkOciLayout } from '../../src/bundle/check-layout.js';
import { rewriteCtp, writeCtp } from '../../src/bundle/write.js';
import { parseManifest } from '../../src/bundle/manifest.js';
import { repoRoot } from '../support/cli.js';
import { rawTar, sha256hex, writeOciLayout } from './tar-fixtures.js';

let tmp: string;
const hello = join(repoRoot, 'examples', 'hello');

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'ct-bundle-pack-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('ct pack from a directory', () => {
  // The walk holds one directory handle a level: the depth is bounded so they stay well under the
  // common 1024 open-file limit (EMFILE), 512 levels packing, 513 refused with the limit named.
  it('packs directories nested 512 deep and refuses 513 (TAR_LIMIT_EXCEEDED, details.limit depth)', async () => {
    const nest = async (levels: number) => {
      const dir = join(tmp, `nest-${levels}`);
      await mkdir(join(dir, ...Array<string>(levels).fill('a')), { recursive: true });
      await writeFile(join(dir, 'ct.toml'), 'name = "p"\nversion = "1"\n');
      await writeFile(join(dir, ...Array<string>(levels).fill('a'), 'f'), 'deepest');
      return packCtp({ from: { dir }, out: join(tmp, `nest-${levels}.ctp`) });
    };
    await expect(nest(512)).resolves.toMatchObject({ manifest: { name: 'p' } });
    await expect(nest(513)).rejects.toMatchObject({ code: 'TAR_LIMIT_EXCEEDED', details: { limit: 'depth' } });
  }, 30_000);

  it('builds a one-layer OCI image whose layout checks out, with the ct.toml inputs', async () => {
    const out = join(tmp, 'hello.ctp');
    const r = await packCtp({ from: { dir: hello }, out });
    const a = await openCtp(out);
    const image = checkOciLayout(a);
    expect(a.bundleDigest).toBe(r.bundleDigest);
    expect(a.bundleDigest).toBe(`sha256:${sha256hex(await readFile(out))}`);
    expect(a.compressed).toBe(false);
    expect(a.manifest.name).toBe('hello');
    expect(a.manifest.version).toBe('1.0.0');
    expect(a.manifest.image_digest).toBe(image.manifestDigest);
    expect(a.manifest.runtime?.command).toEqual(['/bin/hello']);
    expect(a.manifest.metadata.build_timestamp).toBe('1970-01-01T00:00:00Z');
    expect(image.layers).toHaveLength(1);
    expect(image.layers[0].mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
    const cfg = image.config as { config: { Cmd: string[]; User: string; Env: string[] } };
    expect(cfg.config.Cmd).toEqual(['/bin/hello']);
    expect(cfg.config.User).toBe('65534:65534');
    expect(cfg.config.Env).toContain('GREETING=hello from a .ctp');
    // The layer's diff_id is the digest of the uncompressed tar, and the gzip header is fixed.
    const layerBlob = (await readFile(out)).subarray(a.entries.get(`oci-layout/blobs/sha256/${image.layers[0].digest.slice(7)}`)!.dataOffset).subarray(0, image.layers[0].size);
    expect([...layerBlob.subarray(0, 10)]).toEqual([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    expect(`sha256:${sha256hex(gunzipSync(layerBlob))}`).toBe(image.diffIds[0]);
    expect([...a.entries.keys()].sort()).toEqual([...a.entries.keys()]);
  });

  it('is deterministic: same input, same bytes; another SOURCE_DATE_EPOCH, other bytes', async () => {
    const a = join(tmp, 'a.ctp');
    const b = join(tmp, 'b.ctp');
    const c = join(tmp, 'c.ctp');
    await packCtp({ from: { dir: hello }, out: a });
    await packCtp({ from: { dir: hello }, out: b });
    expect(Buffer.compare(await readFile(a), await readFile(b))).toBe(0);
    const old = process.env.SOURCE_DATE_EPOCH;
    process.env.SOURCE_DATE_EPOCH = '1700000000';
    try {
      await packCtp({ from: { dir: hello }, out: c });
    } finally {
      if (old === undefined) delete process.env.SOURCE_DATE_EPOCH;
      else process.env.SOURCE_DATE_EPOCH = old;
    }
    expect(Buffer.compare(await readFile(a), await readFile(c))).not.toBe(0);
    const ca = await openCtp(c);
    expect(ca.manifest.metadata.build_timestamp).toBe('2023-11-14T22:13:20Z');
    expect(ca.mtime).toBe(1700000000);
  });

  // --out inside DIR: the pack's scratch directory (made before the walk) and the first run's
  // output were packed into the layer, so no two runs gave the same bytes.
  it('--out inside the packed directory: its output and scratch directory are not packed, so two runs give the same bytes', async () => {
    const dir = join(tmp, 'out-inside');
    await mkdir(dir);
    await writeFile(join(dir, 'ct.toml'), 'name = "p"\nversion = "1"\n');
    await writeFile(join(dir, 'app'), 'x');
    const out = join(dir, 'o.ctp');
    const a = await packCtp({ from: { dir }, out, mtime: 0 });
    const first = await readFile(out);
    const b = await packCtp({ from: { dir }, out, mtime: 0 });
    expect(b.bundleDigest).toBe(a.bundleDigest);
    expect(await readFile(out)).toEqual(first);
    // And the same as the directory packed from outside it.
    await rm(out);
    expect((await packCtp({ from: { dir }, out: join(tmp, 'out-inside.ctp'), mtime: 0 })).bundleDigest).toBe(a.bundleDigest);
  });

  it('gzip bundles are detected by magic bytes and deterministic too', async () => {
    const a = join(tmp, 'g1.bin');
    const b = join(tmp, 'g2.bin');
    await packCtp({ from: { dir: hello }, out: a, gzip: true });
    await packCtp({ from: { dir: hello }, out: b, gzip: true });
    const bytes = await readFile(a);
    expect(bytes[0]).toBe(0x1f);
    expect(Buffer.compare(bytes, await readFile(b))).toBe(0);
    const arch = await openCtp(a);
    expect(arch.compressed).toBe(true);
    expect(checkOciLayout(arch).manifestDigest).toBe(arch.manifest.image_digest);
  });

  it('keeps symlinks and exec bits in the layer and copies security files', async () => {
    const src = join(tmp, 'tree');
    await mkdir(join(src, 'usr', 'bin'), { recursive: true });
    await writeFile(join(src, 'usr', 'bin', 'app'), '#!/bin/sh\necho hi\n');
    await chmod(join(src, 'usr', 'bin', 'app'), 0o700);
    await symlink('usr/bin', join(src, 'bin'));
    const sec = join(tmp, 'sec');
    await mkdir(sec);
    await writeFile(join(sec, 'seccomp.json'), '{"defaultAction":"SCMP_ACT_ERRNO"}');
    await writeFile(join(sec, 'apparmor'), 'profile x {}\n');
    const out = join(tmp, 'tree.ctp');
    await packCtp({ from: { dir: src }, out, name: 'tree', version: '0.1', securityDir: sec });
    const a = await openCtp(out);
    expect(a.file('security/seccomp.json').toString()).toBe('{"defaultAction":"SCMP_ACT_ERRNO"}');
    expect(a.has('security/apparmor')).toBe(true);
    const image = checkOciLayout(a);
    const chunks: Buffer[] = [];
    for await (const c of a.openEntry(`oci-layout/blobs/sha256/${image.layers[0].digest.slice(7)}`)) chunks.push(c as Buffer);
    const layer = gunzipSync(Buffer.concat(chunks));
    const names: string[] = [];
    for (let off = 0; off + 512 <= layer.length; ) {
      const h = layer.subarray(off, off + 512);
      if (h.every((x) => x === 0)) break;
      const name = h.toString('utf8', 0, 100).replace(/\0.*$/s, '');
      const size = parseInt(h.toString('latin1', 124, 136), 8) || 0;
      names.push(`${name} ${String.fromCharCode(h[156])} ${parseInt(h.toString('latin1', 100, 108), 8).toString(8)} ${h.toString('utf8', 157, 257).replace(/\0.*$/s, '')}`.trim());
      off += 512 + Math.ceil(size / 512) * 512;
    }
    expect(names).toEqual(['bin 2 777 usr/bin', 'usr/ 5 755', 'usr/bin/ 5 755', 'usr/bin/app 0 755']);
  });

  it('leaves version-control metadata out (a checkout\'s .git/config holds the CI job\'s token), at any depth', async () => {
    const src = join(tmp, 'checkout');
    await mkdir(join(src, '.git'), { recursive: true });
    await writeFile(join(src, '.git', 'config'), '[http "https://github.com/"]\n\textraheader = AUTHORIZATION: basic c2VjcmV0\n');
    await mkdir(join(src, 'vendor', 'lib', '.hg'), { recursive: true });
    await writeFile(join(src, 'vendor', 'lib', '.git'), 'gitdir: ../../.git/modules/lib\n');
    await writeFile(join(src, 'vendor', 'lib', 'a.txt'), 'a');
    await writeFile(join(src, '.gitignore'), 'x\n');
    const out = join(tmp, 'checkout.ctp');
    await packCtp({ from: { dir: src }, out, name: 'checkout', version: '0.1' });
    const a = await openCtp(out);
    const image = checkOciLayout(a);
    const chunks: Buffer[] = [];
    for await (const c of a.openEntry(`oci-layout/blobs/sha256/${image.layers[0].digest.slice(7)}`)) chunks.push(c as Buffer);
    const layer = gunzipSync(Buffer.concat(chunks));
    expect(layer.includes('extraheader')).toBe(false);
    expect(layer.includes('gitdir:')).toBe(false);
    expect(layer.includes('.hg')).toBe(false);
    expect(layer.includes('vendor/lib/a.txt')).toBe(true);
    expect(layer.includes('.gitignore')).toBe(true);
  });

  it('reads security files and ct.toml only as regular files: a link (to /proc/self/environ: the job\'s secrets) or a FIFO is refused', async () => {
    const src = join(tmp, 'linked');
    await mkdir(src);
    await writeFile(join(src, 'app'), 'x');
    const sec = join(tmp, 'linked-sec');
    await mkdir(sec);
    await symlink('/proc/self/environ', join(sec, 'apparmor'));
    const out = join(tmp, 'linked.ctp');
    await expect(packCtp({ from: { dir: src }, out, name: 'l', version: '1', securityDir: sec })).rejects.toMatchObject({ code: 'USAGE', message: expect.stringContaining('is a symbolic link') });
    await rm(join(sec, 'apparmor'));
    execFileSync('mkfifo', [join(sec, 'apparmor')]);
    await expect(packCtp({ from: { dir: src }, out, name: 'l', version: '1', securityDir: sec })).rejects.toMatchObject({ code: 'USAGE', message: expect.stringContaining('not a regular file') });
    await rm(join(sec, 'apparmor'));
    await mkdir(join(tmp, 'elsewhere'));
    await writeFile(join(tmp, 'elsewhere', 'policy.cil'), '(allow)');
    await symlink(join(tmp, 'elsewhere'), join(sec, 'selinux'));
    await expect(packCtp({ from: { dir: src }, out, name: 'l', version: '1', securityDir: sec })).rejects.toMatchObject({ code: 'USAGE', message: expect.stringContaining('links are not followed') });
    await symlink('/proc/self/environ', join(src, 'ct.toml'));
    await expect(packCtp({ from: { dir: src }, out, name: 'l', version: '1' })).rejects.toMatchObject({ code: 'USAGE', message: expect.stringContaining('ct.toml is a symbolic link') });
    await rm(join(src, 'ct.toml'));
    execFileSync('mkfifo', [join(src, 'ct.toml')]);
    await expect(packCtp({ from: { dir: src }, out, name: 'l', version: '1' })).rejects.toMatchObject({ code: 'USAGE', message: expect.stringContaining('not a regular file') });
    expect(await readdir(tmp)).not.toContain('linked.ctp');
    // The security directory itself must be a real directory.
    await rm(sec, { recursive: true });
    await mkdir(join(tmp, 'hostsec'));
    await writeFile(join(tmp, 'hostsec', 'apparmor'), 'HOST_SECRET_PROFILE');
    await symlink(join(tmp, 'hostsec'), sec);
    await rm(join(src, 'ct.toml'));
    await expect(packCtp({ from: { dir: src }, out, name: 'l', version: '1', securityDir: sec })).rejects.toMatchObject({ code: 'USAGE', message: expect.stringContaining('must be a directory') });
    // --runtime FILE is the operator's own argument: a link to a real file is read.
    await writeFile(join(tmp, 'real.toml'), 'name = "viaLink"\nversion = "2"\n');
    await symlink(join(tmp, 'real.toml'), join(tmp, 'link.toml'));
    const r = await packCtp({ from: { dir: src }, out, runtimeFile: join(tmp, 'link.toml') });
    expect(r.manifest.name).toBe('viaLink');
  });

  it('an [[include]] cannot take a file from version-control metadata, even through a link', async () => {
    const src = join(tmp, 'inc-git');
    await mkdir(join(src, '.git'), { recursive: true });
    await writeFile(join(src, '.git', 'config'), 'extraheader = AUTHORIZATION: basic SECRET_JOB_TOKEN\n');
    await symlink('.git/config', join(src, 'innocent'));
    for (const from of ['.git/config', 'innocent']) {
      await writeFile(join(src, 'ct.toml'), `name = "i"\nversion = "1"\n[[include]]\nfrom = "${from}"\nto = "etc/leak"\n`);
      await expect(packCtp({ from: { dir: src }, out: join(tmp, 'inc-git.ctp') })).rejects.toMatchObject({ code: 'USAGE', message: expect.stringContaining('version-control metadata') });
    }
  });

  it('[[include]] copies host files into the layer (with their parent directories), bytes and exec bit kept', async () => {
    const src = join(tmp, 'inc');
    await mkdir(join(src, 'bin'), { recursive: true });
    await symlink('busybox', join(src, 'bin', 'sh'));
    await writeFile(join(tmp, 'note.txt'), 'from the host\n');
    await writeFile(join(src, 'ct.toml'), 'name = "inc"\nversion = "1"\n\n[[include]]\nfrom = "/bin/busybox"\nto = "/bin/busybox"\n\n[[include]]\nfrom = "../note.txt"\nto = "usr/share/note.txt"\n');
    const out = join(tmp, 'inc.ctp');
    // ../note.txt is outside the packed directory: only with its directory named (ct pack --include-from).
    await packCtp({ from: { dir: src }, out, includeFrom: [tmp] });
    const a = await openCtp(out);
    const image = checkOciLayout(a);
    const chunks: Buffer[] = [];
    for await (const c of a.openEntry(`oci-layout/blobs/sha256/${image.layers[0].digest.slice(7)}`)) chunks.push(c as Buffer);
    const layer = gunzipSync(Buffer.concat(chunks));
    const files = new Map<string, { mode: number; data: Buffer }>();
    for (let off = 0; off + 512 <= layer.length; ) {
      const h = layer.subarray(off, off + 512);
      if (h.every((x) => x === 0)) break;
      const name = h.toString('utf8', 0, 100).replace(/\0.*$/s, '');
      const size = parseInt(h.toString('latin1', 124, 136), 8) || 0;
      files.set(name, { mode: parseInt(h.toString('latin1', 100, 108), 8), data: layer.subarray(off + 512, off + 512 + size) });
      off += 512 + Math.ceil(size / 512) * 512;
    }
    expect([...files.keys()]).toEqual(['bin/', 'bin/busybox', 'bin/sh', 'usr/', 'usr/share/', 'usr/share/note.txt']);
    expect(files.get('bin/busybox')!.data.equals(await readFile('/bin/busybox'))).toBe(true);
    expect(files.get('bin/busybox')!.mode).toBe(0o755);
    expect(files.get('usr/share/note.txt')).toEqual({ mode: 0o644, data: Buffer.from('from the host\n') });
  });

  it('[[include]] copies nothing from outside the packed directory and the system\'s program directories unless the command line names it', async () => {
    // A ct.toml comes from the repository being built, in CI perhaps a pull request's: the job's
    // environment, a credentials file in its home or runner temp must not end up in a pushed image.
    const src = join(tmp, 'inc-outside');
    const secrets = join(tmp, 'runner-temp');
    await mkdir(src, { recursive: true });
    await mkdir(secrets, { recursive: true });
    await writeFile(join(secrets, 'config.json'), '{"auths":{"registry":{"auth":"SECRET"}}}');
    await symlink(join(secrets, 'config.json'), join(src, 'innocent.json'));
    const out = join(tmp, 'inc-outside.ctp');
    for (const from of ['/proc/self/environ', '/etc/passwd', join(secrets, 'config.json'), '../runner-temp/config.json', 'innocent.json']) {
      await writeFile(join(src, 'ct.toml'), `name = "o"\nversion = "1"\n[[include]]\nfrom = "${from}"\nto = "etc/leak"\n`);
      const err = await packCtp({ from: { dir: src }, out }).then(() => undefined, (e: unknown) => e as { code: string; message: string });
      expect([from, err?.code, err?.message]).toEqual([from, 'USAGE', expect.stringContaining('is outside the packed directory and the system\'s program directories')]);
    }
    await expect(readdir(tmp)).resolves.not.toContain('inc-outside.ctp');
    // Named on the command line, the directory may be copied from; the walk's own symlink stays a symlink.
    await writeFile(join(src, 'ct.toml'), `name = "o"\nversion = "1"\n[[include]]\nfrom = "innocent.json"\nto = "etc/docker.json"\n`);
    await packCtp({ from: { dir: src }, out, includeFrom: [secrets] });
    // A directory named on the command line that does not exist is a mistake said, not skipped.
    await expect(packCtp({ from: { dir: src }, out, includeFrom: [join(tmp, 'runner-tmep')] })).rejects.toMatchObject({ code: 'USAGE', message: expect.stringContaining('runner-tmep: not a directory') });
    // A file of the packed directory itself, and a system program, need nothing.
    await rm(join(src, 'innocent.json'));
    await writeFile(join(src, 'local.txt'), 'mine\n');
    await writeFile(join(src, 'ct.toml'), 'name = "o"\nversion = "1"\n[[include]]\nfrom = "local.txt"\nto = "etc/local.txt"\n[[include]]\nfrom = "/bin/busybox"\nto = "bin/busybox"\n');
    await packCtp({ from: { dir: src }, out });
  });

  it('[[include]] reads the file it checked, however the path is relinked while the pack runs', async () => {
    // Another user swaps a path in a directory it may write between a regular file and a link to a
    // secret; before, the check followed the path once and the read again, so the secret could be
    // packed (it was, in a few tries, in a review).
    const shared = join(tmp, 'shared-writable');
    const src = join(tmp, 'race-src');
    await mkdir(shared, { recursive: true });
    await mkdir(src, { recursive: true });
    const secret = join(tmp, 'race-secret');
    await writeFile(secret, 'SECRET-SECRET-SECRET');
    await writeFile(join(shared, 'decoy'), 'harmless-harmless!!!');
    await writeFile(join(src, 'ct.toml'), `name = "r"\nversion = "1"\n[[include]]\nfrom = "${join(shared, 'f')}"\nto = "etc/f"\n`);
    const { spawn } = await import('node:child_process');
    // The swapper: rename(2) a regular file or a link over f, as fast as it can, in another process.
    const swapper = spawn('sh', ['-c', `cd ${shared} && while :; do cp decoy f.tmp && mv -f f.tmp f; ln -sfn ${secret} l.tmp && mv -fT l.tmp f; done`], { stdio: 'ignore' });
    try {
      let packed = 0;
      for (let i = 0; i < 150; i++) {
        const out = join(tmp, 'race.ctp');
        const ok = await packCtp({ from: { dir: src }, out, includeFrom: [shared] }).then(() => true, () => false);
        if (!ok) continue;
        packed++;
        const a = await openCtp(out);
        const image = checkOciLayout(a);
        const chunks: Buffer[] = [];
        for await (const c of a.openEntry(`oci-layout/blobs/sha256/${image.layers[0].digest.slice(7)}`)) chunks.push(c as Buffer);
        expect(gunzipSync(Buffer.concat(chunks)).includes('SECRET-SECRET')).toBe(false);
      }
      expect(packed).toBeGreaterThan(0);
    } finally {
      swapper.kill('SIGKILL');
    }
  }, 60_000);

  it.each([
    ['a missing host file', 'from = "/nonexistent/busybox"\nto = "bin/busybox"', 'IO_ERROR', /\[\[include\]\] bin\/busybox: \/nonexistent\/busybox/],
    ['a path leaving the image root', 'from = "/bin/busybox"\nto = "../busybox"', 'MANIFEST_INVALID', /include\[0\]\.to/],
    ['a path the directory already has', 'from = "/bin/busybox"\nto = "bin/sh"', 'USAGE', /already has that path/],
    ['a directory as the file', 'from = "/bin"\nto = "bin/x"', 'USAGE', /not a regular file/],
    ['an unknown field', 'from = "/bin/busybox"\nto = "bin/busybox"\nmode = 511', 'MANIFEST_INVALID', /include\[0\]\.mode/],
  ])('[[include]] with %s is refused', async (_what, entry, code, message) => {
    const src = join(tmp, `bad-${code}-${Math.random().toString(36).slice(2)}`);
    await mkdir(join(src, 'bin'), { recursive: true });
    await symlink('busybox', join(src, 'bin', 'sh'));
    await writeFile(join(src, 'ct.toml'), `name = "bad"\nversion = "1"\n\n[[include]]\n${entry}\n`);
    const err = await packCtp({ from: { dir: src }, out: join(src, '..', 'bad.ctp') }).then(() => undefined, (e: unknown) => e as { code: string; message: string });
    expect(err?.code).toBe(code);
    expect(err?.message).toMatch(message);
  });

  it('a ct.toml that is not TOML is MANIFEST_INVALID at its file:line:column', async () => {
    const src = join(tmp, 'bad-toml');
    await mkdir(src, { recursive: true });
    await writeFile(join(src, 'ct.toml'), 'name = "x\nversion = "1"\n');
    const err = await packCtp({ from: { dir: src }, out: join(tmp, 'bad-toml.ctp') }).then(() => undefined, (e: unknown) => e as { code: string; message: string; details: object });
    expect(err).toMatchObject({ code: 'MANIFEST_INVALID', message: `${join(src, 'ct.toml')}:1:10: not valid TOML: Invalid TOML document: control characters are not allowed in strings`, details: { line: 1, column: 10 } });
  });

  it('says a directory is missing or is a file, before asking for a name and a version', async () => {
    const fail = (dir: string) => packCtp({ from: { dir }, out: join(tmp, 'nothing.ctp') }).then(() => undefined, (e: unknown) => e as { code: string; message: string });
    expect(await fail(join(tmp, 'no-such-dir'))).toMatchObject({ code: 'IO_ERROR', message: expect.stringContaining('no-such-dir: ENOENT') });
    expect(await fail(join(hello, 'ct.toml'))).toMatchObject({ code: 'USAGE', message: expect.stringContaining('ct.toml is not a directory') });
  });
});

describe('ct pack from images', () => {
  it('packs an OCI image layout, keeping the manifest digest', async () => {
    const layout = join(tmp, 'layout');
    const layer = rawTar([{ name: 'etc/', type: '5' }, { name: 'etc/os-release', data: 'ID=test\n' }]);
    const { manifestDigest } = await writeOciLayout(layout, [layer]);
    const out = join(tmp, 'layout.ctp');
    const r = await packCtp({ from: { ociLayout: layout }, out, name: 'img', version: '2' });
    expect(r.imageDigest).toBe(manifestDigest);
    const a = await openCtp(out);
    expect(checkOciLayout(a).layers[0].digest).toBe(`sha256:${sha256hex(layer)}`);
  });

  it('refuses an OCI layout whose layer does not match its digest', async () => {
    const layout = join(tmp, 'layout-bad');
    const layer = rawTar([{ name: 'a', data: 'x' }]);
    await writeOciLayout(layout, [layer]);
    await writeFile(join(layout, 'blobs', 'sha256', sha256hex(layer)), rawTar([{ name: 'a', data: 'y' }]));
    await expect(packCtp({ from: { ociLayout: layout }, out: join(tmp, 'bad.ctp'), name: 'x', version: '1' })).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
  });

  it('converts a docker save tar (config kept byte for byte, linked duplicate layer resolved)', async () => {
    const layer = rawTar([{ name: 'hello.txt', data: 'hi\n' }]);
    const diff = `sha256:${sha256hex(layer)}`;
    const config = Buffer.from(JSON.stringify({ architecture: 'arm64', os: 'linux', config: { Cmd: ['/hello'] }, rootfs: { type: 'layers', diff_ids: [diff, diff] } }));
    const cfgName = `${sha256hex(config)}.json`;
    const manifestJson = JSON.stringify([{ Config: cfgName, RepoTags: ['hello:latest'], Layers: ['aaa/layer.tar', 'bbb/layer.tar'] }]);
    const save = rawTar([
      { name: 'aaa/', type: '5' },
      { name: 'aaa/layer.tar', data: layer },
      { name: 'bbb/', type: '5' },
      { name: 'bbb/layer.tar', type: '2', linkpath: '../aaa/layer.tar' },
      { name: cfgName, data: config },
      { name: 'manifest.json', data: manifestJson },
    ]);
    const file = join(tmp, 'save.tar');
    await writeFile(file, save);
    const out = join(tmp, 'save.ctp');
    await packCtp({ from: { imageTar: file }, out, name: 'hello', version: 'latest' });
    const a = await openCtp(out);
    const image = checkOciLayout(a);
    expect(image.configDigest).toBe(`sha256:${sha256hex(config)}`);
    expect(image.layers.map((l) => l.digest)).toEqual([diff, diff]);
    expect(image.layers[0].mediaType).toBe('application/vnd.oci.image.layer.v1.tar');
    expect(image.platform).toEqual({ architecture: 'arm64', os: 'linux' });
    // Packing the same save tar again gives the same bytes.
    const out2 = join(tmp, 'save2.ctp');
    await packCtp({ from: { imageTar: file }, out: out2, name: 'hello', version: 'latest' });
    expect(Buffer.compare(await readFile(out), await readFile(out2))).toBe(0);
  });

  it('reads an OCI archive tar (a layout inside a tar, "./"-prefixed names)', async () => {
    const layout = join(tmp, 'layout-for-archive');
    const layer = rawTar([{ name: 'x', data: 'from an OCI archive' }]);
    const { manifestDigest } = await writeOciLayout(layout, [layer]);
    const entries = [
      { name: './oci-layout', data: await readFile(join(layout, 'oci-layout')) },
      { name: './index.json', data: await readFile(join(layout, 'index.json')) },
      { name: './blobs/', type: '5' },
      { name: './blobs/sha256/', type: '5' },
    ];
    for (const f of await readdir(join(layout, 'blobs', 'sha256'))) entries.push({ name: `./blobs/sha256/${f}`, data: await readFile(join(layout, 'blobs', 'sha256', f)) });
    const file = join(tmp, 'oci-archive.tar');
    await writeFile(file, rawTar(entries));
    const r = await packCtp({ from: { imageTar: file }, out: join(tmp, 'oci-archive.ctp'), name: 'oa', version: '1' });
    expect(r.imageDigest).toBe(manifestDigest);
  });

  it('refuses an image tar with a link leaving the archive', async () => {
    const file = join(tmp, 'evil-save.tar');
    await writeFile(file, rawTar([{ name: 'l/layer.tar', type: '2', linkpath: '../../../etc/passwd' }, { name: 'manifest.json', data: '[]' }]));
    await expect(packCtp({ from: { imageTar: file }, out: join(tmp, 'es.ctp'), name: 'x', version: '1' })).rejects.toMatchObject({ code: 'TAR_UNSAFE_LINK' });
  });

  it('refuses a docker save tar whose layer does not match the config diff_ids', async () => {
    const layer = rawTar([{ name: 'hello.txt', data: 'hi\n' }]);
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [`sha256:${'0'.repeat(64)}`] } }));
    const save = rawTar([
      { name: 'l/layer.tar', data: layer },
      { name: 'c.json', data: config },
      { name: 'manifest.json', data: JSON.stringify([{ Config: 'c.json', Layers: ['l/layer.tar'] }]) },
    ]);
    const file = join(tmp, 'save-bad.tar');
    await writeFile(file, save);
    await expect(packCtp({ from: { imageTar: file }, out: join(tmp, 'sb.ctp'), name: 'x', version: '1' })).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
  });
});

describe('writeCtp / rewriteCtp', () => {
  it('adds and removes files, keeping every other file identical and staying deterministic', async () => {
    const src = join(tmp, 'hello.ctp');
    await packCtp({ from: { dir: hello }, out: src });
    const before = await openCtp(src);
    const signed1 = join(tmp, 'signed1.ctp');
    const signed2 = join(tmp, 'signed2.ctp');
    const att = Buffer.from('{"fake":"attestation bundle"}');
    await rewriteCtp(src, signed1, { add: { 'attestations/bundle.json': att } });
    await rewriteCtp(src, signed2, { add: { 'attestations/bundle.json': att } });
    expect(Buffer.compare(await readFile(signed1), await readFile(signed2))).toBe(0);
    const after = await openCtp(signed1);
    expect(after.file('attestations/bundle.json')).toEqual(att);
    for (const [name, e] of before.entries) expect(after.entries.get(name)?.sha256).toBe(e.sha256);
    const back = join(tmp, 'unsigned.ctp');
    await rewriteCtp(signed1, back, { remove: ['attestations/bundle.json'] });
    expect(Buffer.compare(await readFile(src), await readFile(back))).toBe(0);
  });

  it('rewrites a gzip bundle in place and keeps it compressed', async () => {
    const src = join(tmp, 'inplace.ctp');
    await packCtp({ from: { dir: hello }, out: src, gzip: true });
    await rewriteCtp(src, src, { add: { 'attestations/x.sigstore.json': Buffer.from('{}') } });
    const a = await openCtp(src);
    expect(a.compressed).toBe(true);
    expect(a.has('attestations/x.sigstore.json')).toBe(true);
    expect(checkOciLayout(a).manifestDigest).toBe(a.manifest.image_digest);
  });

  it('writes long and non-ASCII names with a pax header the reader accepts', async () => {
    const src = join(tmp, 'hello.ctp');
    await packCtp({ from: { dir: hello }, out: src });
    const long = `attestations/${'a'.repeat(180)}-é.sigstore.json`;
    const out = join(tmp, 'long.ctp');
    await rewriteCtp(src, out, { add: { [long]: Buffer.from('{}') } });
    const a = await openCtp(out);
    expect(a.file(long).toString()).toBe('{}');
    const out2 = join(tmp, 'long2.ctp');
    await rewriteCtp(src, out2, { add: { [long]: Buffer.from('{}') } });
    expect(Buffer.compare(await readFile(out), await readFile(out2))).toBe(0);
  });

  it('refuses unsafe names when writing', async () => {
    await expect(writeCtp(join(tmp, 'w.ctp'), { '../x': Buffer.from('x') })).rejects.toMatchObject({ code: 'TAR_UNSAFE_PATH' });
    await expect(writeCtp(join(tmp, 'w.ctp'), { './x': Buffer.from('x') })).rejects.toMatchObject({ code: 'TAR_UNSAFE_PATH' });
  });
});

describe('manifest.toml', () => {
  const good = 'name = "a"\nversion = "1"\nimage_digest = "sha256:' + 'a'.repeat(64) + '"\n[metadata]\nbuild_timestamp = "2026-01-01T00:00:00Z"\nbuilder = "x"\n';
  it('parses a valid manifest', () => {
    expect(parseManifest(good).name).toBe('a');
  });
  it('reports every bad field with its path', () => {
    const bad = 'name = ""\nversion = "1"\nimage_digest = "sha256:xyz"\n[metadata]\nbuild_timestamp = "yesterday"\nbuilder = "x"\n[runtime]\ncapabilities = ["NET_ADMIN"]\nports = [70000]\n';
    try {
      parseManifest(bad);
      throw new Error('accepted');
    } catch (e) {
      const err = e as { code: string; details: { problems: { path: string }[] } };
      expect(err.code).toBe('MANIFEST_INVALID');
      expect(err.details.problems.map((p) => p.path).sort()).toEqual(['image_digest', 'metadata.build_timestamp', 'name', 'runtime.capabilities[0]', 'runtime.ports[0]']);
    }
  });
  it('rejects a non-UTC timestamp, a missing table and a future major version', () => {
    expect(() => parseManifest(good.replace('00:00:00Z', '00:00:00+02:00'))).toThrow(expect.objectContaining({ code: 'MANIFEST_INVALID' }));
    expect(() => parseManifest(good.replace(/\[metadata\][\s\S]*/, ''))).toThrow(expect.objectContaining({ code: 'MANIFEST_INVALID' }));
    expect(() => parseManifest(`ctp_version = "3.0"\n${good}`)).toThrow(expect.objectContaining({ code: 'UNSUPPORTED_VERSION' }));
    expect(() => parseManifest('name = [')).toThrow(expect.objectContaining({ code: 'MANIFEST_INVALID' }));
  });
});
