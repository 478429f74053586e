/**
 * placeOutput: how ct pack, ct fetch and ct sign --out put their finished temporary in place.
 * Without --force (`replace: false`) whatever appeared at the name after the check at the start
 * (refuseExistingOutput) is refused, never replaced; with --force a rename replaces it (a
 * symbolic link there is replaced, not followed).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { lstat, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { placeOutput, tempPathFor } from '../../src/core/fs.js';
import { writeCtp } from '../../src/bundle/write.js';
import { isCtError } from '../../src/core/errors.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ct-place-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function temp(target: string, text: string): Promise<string> {
  const t = tempPathFor(target);
  await writeFile(t, text);
  return t;
}

describe('placeOutput', () => {
  it('without replace: puts the file in place when the name is free, and leaves no temporary', async () => {
    const out = join(dir, 'free.ctp');
    await placeOutput(await temp(out, 'new'), out, false);
    expect(await readFile(out, 'utf8')).toBe('new');
    expect((await readdir(dir)).filter((n) => n.startsWith('.free.ctp.'))).toEqual([]);
  });

  it('without replace: a file or a dangling link at the name is refused (IO_ERROR, already exists) and kept', async () => {
    const out = join(dir, 'taken.ctp');
    await writeFile(out, 'precious');
    const t = await temp(out, 'new');
    const e = await placeOutput(t, out, false).catch((x: unknown) => x);
    expect(isCtError(e) && e.code).toBe('IO_ERROR');
    expect((e as Error).message).toBe(`${out}: already exists (use --force to replace it)`);
    expect(await readFile(out, 'utf8')).toBe('precious');
    const link = join(dir, 'dangling.ctp');
    await symlink(join(dir, 'nowhere'), link);
    await expect(placeOutput(await temp(link, 'new'), link, false)).rejects.toThrow('already exists');
    expect((await lstat(link)).isSymbolicLink()).toBe(true);
    await expect(lstat(join(dir, 'nowhere'))).rejects.toThrow();
  });

  it('with replace: a symbolic link at the name is replaced, not followed', async () => {
    const victim = join(dir, 'victim');
    await writeFile(victim, 'victim');
    const out = join(dir, 'linked.ctp');
    await symlink(victim, out);
    await placeOutput(await temp(out, 'new'), out, true);
    expect((await lstat(out)).isFile()).toBe(true);
    expect(await readFile(out, 'utf8')).toBe('new');
    expect(await readFile(victim, 'utf8')).toBe('victim');
  });
});

describe('writeCtp with replace: false', () => {
  it('refuses a file that appears at the output while it writes (the write keeps it, removes its temporary)', async () => {
    const out = join(dir, 'during.ctp');
    const files = {
      'manifest.toml': Buffer.from('x = 1\n'),
      // Opened as the bundle is written: the output's name gets taken meanwhile.
      'z.txt': { size: 1, open: () => Readable.from((async function* () { await writeFile(out, 'precious'); yield Buffer.from('z'); })()) },
    };
    await expect(writeCtp(out, files, { replace: false })).rejects.toThrow(`${out}: already exists (use --force to replace it)`);
    expect(await readFile(out, 'utf8')).toBe('precious');
    expect((await readdir(dir)).filter((n) => n.startsWith('.during.ctp.'))).toEqual([]);
    // The default (a library caller's, --force): replaced.
    await writeFile(out, 'old');
    await writeCtp(out, { 'manifest.toml': files['manifest.toml'] });
    expect(await readFile(out, 'utf8')).not.toBe('old');
  });
});
