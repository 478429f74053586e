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
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { repoRoot } from '../support/cli.js';

const build = (p: string) => pathToFileURL(join(repoRoot, 'build', 'src', 'bundle', p)).href;

/**
 * The child: P/d/key (20 harmless bytes) is packed; S/key holds a secret of the same size. `when`
 * says when P/d (or P/d/key) is swapped: `open` = the first open/readFile of P/d/key after the
 * walk; `readdir` = when the walk lists P/d, after its lstat said directory (then the walk's own
 * lstat of P/d/key already sees the secret's inode); `fifo` = P/d/key replaced by a FIFO before the
 * open; `none` = not at all. Prints what the user would see: the error's code and details, whether
 * the output exists and whether the secret is in any file left in the output directory.
 */
const child = (tmp: string, when: string) => `
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
const tmp = ${JSON.stringify(tmp)}, when = ${JSON.stringify(when)};
const S = join(tmp, 'secret'), P = join(tmp, 'P'), outDir = join(tmp, 'out');
for (const d of [S, join(P, 'd'), outDir]) fs.mkdirSync(d, { recursive: true });
fs.writeFileSync(join(S, 'key'), 'SECRET-SECRET-SECRET');
fs.writeFileSync(join(P, 'd', 'key'), 'harmless-harmless!!!');
fs.writeFileSync(join(P, 'ct.toml'), 'name = "r"\\nversion = "1"\\n');
let done = false;
const swapDir = () => { done = true; fs.renameSync(join(P, 'd'), join(tmp, 'old')); fs.symlinkSync(S, join(P, 'd')); };
const swapFifo = () => { done = true; execFileSync('mkfifo', [join(tmp, 'fifo')]); fs.renameSync(join(tmp, 'fifo'), join(P, 'd', 'key')); };
const p = fs.promises;
for (const fn of ['open', 'readFile']) {
  const orig = p[fn];
  p[fn] = async (x, ...r) => {
    if (!done && String(x) === join(P, 'd', 'key')) { if (when === 'open') swapDir(); if (when === 'fifo') swapFifo(); }
    return orig(x, ...r);
  };
}
const origReaddir = p.readdir;
p.readdir = async (x, ...r) => {
  if (!done && when === 'readdir' && String(x) === join(P, 'd')) swapDir();
  return origReaddir(x, ...r);
};
syncBuiltinESMExports();
const { packCtp } = await import(${JSON.stringify(build('pack/pack.js'))});
const out = join(outDir, 'o.ctp');
let error;
await packCtp({ from: { dir: P }, out }).catch((e) => { error = { code: e.code, details: e.details }; });
let secretInOut = false, harmlessInLayer = false;
for (const f of fs.readdirSync(outDir, { recursive: true })) {
  const path = join(outDir, String(f));
  if (!fs.statSync(path).isFile()) continue;
  const bytes = fs.readFileSync(path);
  // The layer is gzipped inside the tar: look at it unzipped too.
  const layers = [];
  for (let i = bytes.indexOf(Buffer.from([0x1f, 0x8b, 8])); i >= 0; i = bytes.indexOf(Buffer.from([0x1f, 0x8b, 8]), i + 1)) {
    try { layers.push(gunzipSync(bytes.subarray(i), { finishFlush: 2 })); } catch {}
  }
  secretInOut ||= [bytes, ...layers].some((b) => b.includes('SECRET-SECRET'));
  harmlessInLayer ||= layers.some((b) => b.includes('harmless-harmless'));
}
console.log(JSON.stringify({ swapped: done, error, outExists: fs.existsSync(out), secretInOut, harmlessInLayer }));
`;

interface Outcome { swapped: boolean; error?: { code: string; details: Record<string, unknown> }; outExists: boolean; secretInOut: boolean; harmlessInLayer: boolean }

describe('ct pack DIR: a file swapped while the pack runs', () => {
  let base: string;
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'ct-pack-walk-race-'));
  });
  afterAll(async () => {
    await rm(base, { recursive: true, force: true });
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
    ['its directory swapped for a link between the walk and the read', 'open', {}],
    // Device, inode and size all match here: only the kernel's name for the handle tells.
    ['its directory swapped for a link while the walk lists it (the inode lstat saw is the secret\'s)', 'readdir', { opened: expect.stringMatching(/\/secret\/key$/) }],
    ['the file replaced by a FIFO (refused, not waited on)', 'fifo', {}],
  ])('is refused (IO_ERROR on that file) and nothing is written: %s', async (_what, when, details) => {
    const r = (await run(when)) as Outcome & { tmp: string };
    expect(r).toEqual({
      swapped: true,
      error: { code: 'IO_ERROR', details: expect.objectContaining({ path: join(r.tmp, 'P', 'd', 'key'), ...details }) },
      outExists: false, secretInOut: false, harmlessInLayer: false, tmp: r.tmp,
    });
  }, 30_000);
});
