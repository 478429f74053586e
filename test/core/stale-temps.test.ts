/**
 * removeStaleTemps (src/core/fs.ts) in its two explicit modes. `own-files`, for directories others
 * can write (ct fetch's -o): only regular files of this user, unlinked, nothing traversed, so a
 * directory, a symlink or another user's file named as a temporary is left (a recursive removal of
 * a planted directory can be steered into another one by swapping a subdirectory for a symlink
 * while it runs). `private-trees`, for a directory only we can write: whole trees. In both, one
 * entry that cannot be removed does not keep the others; the first failure comes after them all.
 * No disk refuses one unlink on demand here, so unlink fails for one name by a stand-in.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { existsSync, lstatSync } from 'node:fs';
import { mkdtemp, mkdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

const real = await import('node:fs/promises');
/** unlink and rm of a name holding this fail with EPERM. */
const REFUSED = 'eeeeeeeeeeee';
const refuse = (path: string): Promise<never> => Promise.reject(Object.assign(new Error(`EPERM: operation not permitted, '${path}'`), { code: 'EPERM', path }));
jest.unstable_mockModule('node:fs/promises', () => ({
  ...real,
  default: real,
  unlink: (path: string) => (basename(path).includes(REFUSED) ? refuse(path) : real.unlink(path)),
  rm: (path: string, o?: Parameters<typeof real.rm>[1]) => (basename(path).includes(REFUSED) ? refuse(path) : real.rm(path, o)),
}));
const { removeStaleTemps } = await import('../../src/core/fs.js');
const { plantStaleTemps, victimIntact } = await import('../support/stale-temps.js');

const HOUR = 60 * 60_000;
let tmp: string;
let n = 0;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'ct-stale-temps-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function freshDir(): Promise<string> {
  const d = join(tmp, `d${n++}`);
  await mkdir(d);
  return d;
}

describe("removeStaleTemps own-files (ct fetch's)", () => {
  it('unlinks a stale regular file of ours, and leaves a directory, symlinks and another user\'s file named like one', async () => {
    const dest = join(await freshDir(), 'bundle.ctp');
    const planted = await plantStaleTemps(dest, 2 * HOUR);
    await removeStaleTemps(dest, { kind: 'own-files', olderThanMs: HOUR });
    expect(existsSync(planted.ours)).toBe(false);
    for (const p of planted.kept) expect(lstatSync(p, { throwIfNoEntry: false })).toBeDefined();
    expect(await victimIntact(planted)).toBe(true);
  });

  it('leaves one of ours changed more recently than olderThanMs (a live writer\'s)', async () => {
    const d = await freshDir();
    const dest = join(d, 'bundle.ctp');
    const live = join(d, '.bundle.ctp.0123456789ab.tmp');
    await writeFile(live, 'being written');
    await removeStaleTemps(dest, { kind: 'own-files', olderThanMs: HOUR });
    expect(existsSync(live)).toBe(true);
    await removeStaleTemps(dest, { kind: 'own-files' });
    expect(existsSync(live)).toBe(false);
  });

  it('one that cannot be unlinked does not keep the others; its failure comes after them (IO_ERROR)', async () => {
    const d = await freshDir();
    const dest = join(d, 'bundle.ctp');
    const names = ['.bundle.ctp.111111111111.tmp', `.bundle.ctp.${REFUSED}.tmp`, '.bundle.ctp.222222222222.tmp'];
    const then = new Date(Date.now() - 2 * HOUR);
    for (const m of names) {
      await writeFile(join(d, m), 'x');
      await utimes(join(d, m), then, then);
    }
    await expect(removeStaleTemps(dest, { kind: 'own-files', olderThanMs: HOUR })).rejects.toMatchObject({ code: 'IO_ERROR', details: { path: join(d, names[1]) } });
    expect(names.filter((m) => existsSync(join(d, m)))).toEqual([names[1]]);
  });
});

describe('removeStaleTemps private-trees (the agent\'s state directory)', () => {
  it('removes whole trees, whatever their age; one that cannot be removed does not keep the others', async () => {
    const d = await freshDir();
    const dest = join(d, 'rootfs');
    const names = ['.rootfs.111111111111.tmp', `.rootfs.${REFUSED}.tmp`, '.rootfs.222222222222.tmp'];
    for (const m of names) await mkdir(join(d, m, 'usr', 'bin'), { recursive: true });
    await expect(removeStaleTemps(dest, { kind: 'private-trees' })).rejects.toMatchObject({ code: 'IO_ERROR' });
    expect(names.filter((m) => existsSync(join(d, m)))).toEqual([names[1]]);
  });
});
