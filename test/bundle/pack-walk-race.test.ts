/**
 * `ct pack DIR` reads each file it walked from one handle, checked to be that file: a directory of
 * the path swapped for a link to another directory (by someone who may write the packed directory,
 * under a pack run as root or by CI) is refused, not followed to pack another file of the same
 * size (a review packed a secret so). The swap is forced at the moment it hurts: a child process
 * patches the fs function that touches the path (open now; readFile/readdir before the fix) to do
 * it first. A child, because Jest's ESM loader snapshots builtins, so a patch would not reach.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { repoRoot } from '../support/cli.js';

const build = (p: string) => pathToFileURL(join(repoRoot, 'build', 'src', 'bundle', p)).href;

/**
 * The child: P/d/key (20 harmless bytes) is packed; S/key holds a secret of the same size, and S2
 * only a directory and a symlink whose names are private (PRIVATE-DIR-NAME, SECRET-LINK-TARGET).
 * `when` says what is swapped, and when (each fs call is matched by the real path its argument
 * names at that moment, so a call through /proc/self/fd/N counts as one on the file):
 * `lstat` = P/d for a link to S2 right after the walk's lstat of P/d said directory; `leak` =
 * the same, to S2; `readdir` = P/d for a link to S when the walk lists P/d; `open` = P/d for a link
 * to S just before P/d/key is opened; `fifo` = P/d/key for a FIFO before it is opened; `root` = P
 * itself for a link to S right after P/ct.toml was opened (read), and `root-include` the same with a
relative [[include]] of d/key (S/d/key holds the secret); `walkdir` = P/d for a real directory
(a secret key of the same size) right after the walk's lstat of P/d; `reopen` = the same after
the walk, when P/d is opened again to read its files; `samesize` = P/d/key for another regular
file of the same size before it is opened; `grow` = P/d/key grown before it is opened; `none` = nothing. Prints what the
 * user would see: the error's code and details, whether the output exists, whether the secret (or
 * S2's names) is in any file left in the output directory or in the error.
 */
const child = (tmp: string, when: string) => `
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
const tmp = ${JSON.stringify(tmp)}, when = ${JSON.stringify(when)};
const S = join(tmp, 'secret'), S2 = join(tmp, 'secret2'), P = join(tmp, 'P'), outDir = join(tmp, 'out');
for (const d of [S, join(S2, 'PRIVATE-DIR-NAME'), join(P, 'd'), outDir]) fs.mkdirSync(d, { recursive: true });
fs.writeFileSync(join(S, 'key'), 'SECRET-SECRET-SECRET');
fs.symlinkSync('SECRET-LINK-TARGET', join(S2, 'tok'));
fs.chmodSync(S2, 0o700);
fs.writeFileSync(join(P, 'd', 'key'), 'harmless-harmless!!!');
fs.writeFileSync(join(P, 'ct.toml'), 'name = "r"\\nversion = "1"\\n');
// root-include: a relative [[include]], which must be opened through P's handle, not its name.
if (when === 'root-include') { fs.mkdirSync(join(S, 'd')); fs.writeFileSync(join(S, 'd', 'key'), 'SECRET-SECRET-SECRET'); fs.appendFileSync(join(P, 'ct.toml'), '[[include]]\\nfrom = "d/key"\\nto = "inc/key"\\n'); }
let done = false;
const swap = (path, to) => { done = true; fs.renameSync(path, join(tmp, 'old')); fs.symlinkSync(to, path); };
// A real directory (not a link) in its place, holding a secret file of the same name and size.
const swapRealDir = (path) => { done = true; fs.renameSync(path, join(tmp, 'old')); fs.mkdirSync(path); fs.writeFileSync(join(path, 'key'), 'SECRET-SECRET-SECRET'); };
// Another regular file of the same size in the file's place; or the file itself grown.
const swapFile = () => { done = true; fs.writeFileSync(join(tmp, 'other'), 'SECRET-SECRET-SECRET'); fs.renameSync(join(tmp, 'other'), join(P, 'd', 'key')); };
const grow = () => { done = true; fs.appendFileSync(join(P, 'd', 'key'), '+more'); };
let opensOfD = 0;
const swapFifo = () => { done = true; execFileSync('mkfifo', [join(tmp, 'fifo')]); fs.renameSync(join(tmp, 'fifo'), join(P, 'd', 'key')); };
const real = (x) => { try { return fs.realpathSync(String(x)); } catch { return ''; } };
const p = fs.promises;
for (const fn of ['open', 'readFile']) {
  const orig = p[fn];
  p[fn] = async (x, ...r) => {
    if (!done && real(x) === join(P, 'd', 'key')) { if (when === 'open') swap(join(P, 'd'), S); if (when === 'fifo') swapFifo(); if (when === 'samesize') swapFile(); if (when === 'grow') grow(); }
    // The second open of P/d is the one for reading its files, after the walk (its first).
    if (!done && when === 'reopen' && real(x) === join(P, 'd') && ++opensOfD === 2) swapRealDir(join(P, 'd'));
    const rootToml = !done && (when === 'root' || when === 'root-include') && real(x) === join(P, 'ct.toml');
    const res = await orig(x, ...r);
    if (rootToml) swap(P, S);
    return res;
  };
}
const origReaddir = p.readdir;
p.readdir = async (x, ...r) => {
  if (!done && when === 'readdir' && real(x) === join(P, 'd')) swap(join(P, 'd'), S);
  return origReaddir(x, ...r);
};
const origLstat = p.lstat;
p.lstat = async (x, ...r) => {
  const hit = !done && (when === 'lstat' || when === 'leak' || when === 'walkdir') && real(x) === join(P, 'd');
  const res = await origLstat(x, ...r);
  if (hit && when === 'walkdir') swapRealDir(join(P, 'd'));
  else if (hit) swap(join(P, 'd'), when === 'leak' ? S2 : S);
  return res;
};
syncBuiltinESMExports();
const { packCtp } = await import(${JSON.stringify(build('pack/pack.js'))});
const out = join(outDir, 'o.ctp');
let error;
await packCtp({ from: { dir: P }, out }).catch((e) => { error = { code: e.code, details: e.details }; });
const secrets = ['SECRET-SECRET', 'PRIVATE-DIR-NAME', 'SECRET-LINK-TARGET'];
let secretInOut = secrets.some((s) => JSON.stringify(error ?? {}).includes(s)), harmlessInLayer = false;
for (const f of fs.readdirSync(outDir, { recursive: true })) {
  const path = join(outDir, String(f));
  if (!fs.statSync(path).isFile()) continue;
  const bytes = fs.readFileSync(path);
  // The layer is gzipped inside the tar: look at it unzipped too.
  const layers = [];
  for (let i = bytes.indexOf(Buffer.from([0x1f, 0x8b, 8])); i >= 0; i = bytes.indexOf(Buffer.from([0x1f, 0x8b, 8]), i + 1)) {
    try { layers.push(gunzipSync(bytes.subarray(i), { finishFlush: 2 })); } catch {}
  }
  secretInOut ||= [bytes, ...layers].some((b) => secrets.some((s) => b.includes(s)));
  harmlessInLayer ||= layers.some((b) => b.includes('harmless-harmless'));
}
console.log(JSON.stringify({ swapped: done, error, outExists: fs.existsSync(out), secretInOut, harmlessInLayer }));
`;

/** The layers of a .ctp, unzipped and joined (the harness's own search, in this process). */
async function layerOf(ctp: string): Promise<Buffer> {
  const bytes = await readFile(ctp);
  const layers: Buffer[] = [];
  for (let i = bytes.indexOf(Buffer.from([0x1f, 0x8b, 8])); i >= 0; i = bytes.indexOf(Buffer.from([0x1f, 0x8b, 8]), i + 1)) {
    try {
      layers.push(gunzipSync(bytes.subarray(i), { finishFlush: 2 }));
    } catch {
      // not a gzip member's start
    }
  }
  return Buffer.concat(layers);
}

interface Outcome { swapped: boolean; error?: { code: string; details: Record<string, unknown> }; outExists: boolean; secretInOut: boolean; harmlessInLayer: boolean }

describe('ct pack DIR: a file swapped while the pack runs', () => {
  let base: string;
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'ct-pack-walk-race-'));
  });
  afterAll(async () => {
    // rm -rf: it goes a directory at a time; fs.rm names each file by its full path, too long in the deep tree.
    await promisify(execFile)('rm', ['-rf', base]);
  });

  const run = async (when: string): Promise<Outcome> => {
    const tmp = await mkdtemp(join(base, `${when}-`));
    const r = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', child(tmp, when)], { timeout: 15_000 });
    return { ...(JSON.parse(r.stdout.trim()) as Outcome), tmp } as Outcome & { tmp: string };
  };

  it('packs the file when nothing is swapped (the harness itself refuses nothing)', async () => {
    expect(await run('none')).toEqual({ swapped: false, outExists: true, secretInOut: false, harmlessInLayer: true, tmp: expect.any(String) });
  }, 30_000);

  it.each([
    // The directory is held open from the walk on: the file is read from it, where it was.
    ['its directory swapped for a link just before the file is opened', 'open'],
    // DIR is opened once, first: ct.toml, the walk and every check go through that handle.
    // Before, DIR was named again after ct.toml was read and the link's target was packed.
    ['the packed directory itself swapped for a link after its ct.toml was read', 'root'],
    // A relative [[include]] is opened through DIR's handle: before, by DIR's name, so it opened
    // the link's target's file (refused by the check, but with the secret's path in the error).
    ['the packed directory swapped for a link after its ct.toml (with a relative [[include]]) was read', 'root-include'],
  ])('packs the directory that was there, never the link\'s target: %s', async (_what, when) => {
    const r = (await run(when)) as Outcome & { tmp: string };
    expect(r).toEqual({ swapped: true, outExists: true, secretInOut: false, harmlessInLayer: true, tmp: r.tmp });
  }, 30_000);

  it.each([
    ['its directory swapped for a link right after the walk found it a directory', 'lstat', 'd', 'kind'],
    // Before, the walk listed the link's target and read its symlinks by path: the names of a
    // root-only directory and its link targets were packed (a link to / walked the filesystem).
    ['its directory swapped for a link to a directory of only directories and symlinks (their names must not leak)', 'leak', 'd', 'kind'],
    ['its directory swapped for a link while the walk lists it (the walk lists the one it opened)', 'readdir', 'd', 'kind'],
    ['the file replaced by a FIFO (refused, not waited on)', 'fifo', 'd/key', 'kind'],
    // Not links: only the device and inode tell these apart, and the size a grown file.
    ['its directory swapped for a real directory right after the walk found it a directory', 'walkdir', 'd', 'identity'],
    ['its directory swapped for a real directory between the walk and the read', 'reopen', 'd', 'identity'],
    ['the file replaced by another regular file of the same size', 'samesize', 'd/key', 'identity'],
    // Refused when opened, before a byte is read (the read's own count would refuse it later).
    ['the file grown between the walk and its open', 'grow', 'd/key', 'size'],
  ])('is refused (IO_ERROR on that path) and nothing is written: %s', async (_what, when, at, changed) => {
    const r = (await run(when)) as Outcome & { tmp: string };
    expect(r).toEqual({
      swapped: true,
      error: { code: 'IO_ERROR', details: expect.objectContaining({ path: join(r.tmp, 'P', at), changed }) },
      outExists: false, secretInOut: false, harmlessInLayer: false, tmp: r.tmp,
    });
  }, 30_000);

  // The walk goes a directory handle at a time, so no path longer than PATH_MAX (4096 bytes) is
  // needed; before, the kernel could not name such a file's handle and the pack blamed /proc.
  it('packs a tree whose real path is longer than 4096 bytes, reached through a short link', async () => {
    const tmp = await mkdtemp(join(base, 'deep-'));
    const seg = 'd'.repeat(200);
    // ~3000 bytes to the root, ~1200 more to the file: made through the link, as no path that long works.
    const top = join(tmp, ...Array<string>(15).fill(seg));
    await mkdir(top, { recursive: true });
    await symlink(top, join(tmp, 'r'));
    await mkdir(join(tmp, 'r', ...Array<string>(6).fill(seg)), { recursive: true });
    await writeFile(join(tmp, 'r', 'ct.toml'), 'name = "p"\nversion = "1"\n');
    await writeFile(join(tmp, 'r', ...Array<string>(6).fill(seg), 'deep-file'), 'deep-content');
    const script = `const { packCtp } = await import(${JSON.stringify(build('pack/pack.js'))});
      console.log(await packCtp({ from: { dir: ${JSON.stringify(join(tmp, 'r'))} }, out: ${JSON.stringify(join(tmp, 'o.ctp'))} }).then(() => 'packed', (e) => e.code));`;
    const r = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { timeout: 15_000 });
    expect(r.stdout.trim()).toBe('packed');
    const layer = await layerOf(join(tmp, 'o.ctp'));
    expect(layer.includes(`${Array<string>(6).fill(seg).join('/')}/deep-file`)).toBe(true);
    expect(layer.includes('deep-content')).toBe(true);

    // An [[include]] from there cannot be checked (the kernel cannot name where it lies): IO_ERROR
    // saying so, not a /proc the machine has.
    const deepTool = `${Array<string>(6).fill(seg).join('/')}/deep-file`;
    await writeFile(join(tmp, 'r', 'ct.toml'), `name = "p"\nversion = "1"\n[[include]]\nfrom = "${deepTool}"\nto = "bin/tool"\n`);
    const inc = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script.replace("e.code", "JSON.stringify({ code: e.code, errno: e.details.errno })")], { timeout: 15_000 });
    expect(JSON.parse(inc.stdout.trim())).toEqual({ code: 'IO_ERROR', errno: 'ENAMETOOLONG' });
  }, 30_000);
});
