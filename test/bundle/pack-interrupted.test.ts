/**
 * A `ct pack DIR -o DIR/out.ctp` that ends mid-pack leaves nothing beside the output: SIGINT
 * removes its scratch directory (the copy of DIR's files being made into a layer) and the output's
 * temporary (src/cli/interrupt.ts). What a SIGKILLed pack left there is refused by the next pack of
 * DIR (USAGE naming it) instead of being packed into the image, a deleted secret with it.
 * Real `ct` processes.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tempTargetName } from '../../src/core/fs.js';
import { repoRoot, runCt } from '../support/cli.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ct-pack-interrupted-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** What a pack leaves beside `out.ctp` in `d`: scratch directories, temporaries and the output. */
async function leftBeside(d: string): Promise<string[]> {
  return (await readdir(d)).filter((n) => n.startsWith('.ct-pack-') || tempTargetName(n) === 'out.ctp' || n === 'out.ctp').sort();
}

/** A directory to pack holding 48 MiB of random bytes (seconds of gzip: long enough to catch mid-pack). */
async function bigDir(name: string): Promise<string> {
  const d = join(dir, name);
  await mkdir(d);
  await writeFile(join(d, 'ct.toml'), 'name = "interrupted"\nversion = "1"\n');
  await writeFile(join(d, 'big.bin'), randomBytes(48 * 1024 * 1024));
  return d;
}

/**
 * Starts `ct pack d -o d/out.ctp [extra]`, sends SIGINT once `ready(names in d)` holds, and returns
 * how it ended.
 */
async function interruptWhen(d: string, extra: string[], ready: (names: string[]) => Promise<boolean>): Promise<{ signal: NodeJS.Signals | null; code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [join(repoRoot, 'bin', 'ct.js'), 'pack', d, '-o', join(d, 'out.ctp'), ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c));
  const ended = new Promise<{ signal: NodeJS.Signals | null; code: number | null; stderr: string }>((r) => child.on('close', (code, signal) => r({ code, signal, stderr })));
  let exited = false;
  void ended.then(() => (exited = true));
  for (const started = Date.now(); ; await new Promise((r) => setTimeout(r, 5))) {
    if (await ready(await readdir(d))) break;
    if (exited) throw new Error(`ct pack ended before it was interrupted: ${stderr}`);
    if (Date.now() - started > 60000) throw new Error('ct pack never got there');
  }
  child.kill('SIGINT');
  return ended;
}

describe('ct pack interrupted', () => {
  it('SIGINT while the layer is being written leaves no scratch directory beside the output', async () => {
    const d = await bigDir('layer-phase');
    const scratchHasLayerTemp = async (names: string[]): Promise<boolean> => {
      const s = names.find((n) => n.startsWith('.ct-pack-'));
      return s !== undefined && (await readdir(join(d, s)).catch(() => [])).some((n) => tempTargetName(n) === 'layer');
    };
    const r = await interruptWhen(d, [], scratchHasLayerTemp);
    expect(r.signal).toBe('SIGINT');
    expect(await leftBeside(d)).toEqual([]);
    // The next pack of DIR goes through (nothing of the first is in its way or in its image).
    const again = await runCt(['pack', d, '-o', join(d, 'out.ctp')]);
    expect(again.code).toBe(0);
    expect(await leftBeside(d)).toEqual(['out.ctp']);
  }, 120000);

  it('SIGINT while the output is being written leaves neither its temporary nor the scratch directory', async () => {
    const d = await bigDir('output-phase');
    // --gzip: the output is gzipped whole, so writing it takes as long as the layer did.
    const r = await interruptWhen(d, ['--gzip'], async (names) => names.some((n) => tempTargetName(n) === 'out.ctp'));
    expect(r.signal).toBe('SIGINT');
    expect(await leftBeside(d)).toEqual([]);
  }, 120000);
});

describe('ct pack after a pack killed outright', () => {
  const small = async (name: string): Promise<string> => {
    const d = join(dir, name);
    await mkdir(d);
    await writeFile(join(d, 'ct.toml'), 'name = "left"\nversion = "1"\n');
    await writeFile(join(d, 'app.txt'), 'hello\n');
    return d;
  };

  it('refuses a scratch directory an earlier pack left in the output directory inside DIR', async () => {
    const d = await small('left-scratch');
    await mkdir(join(d, 'dist', '.ct-pack-Ab12Cd'), { recursive: true });
    await writeFile(join(d, 'dist', '.ct-pack-Ab12Cd', 'secret.key'), 'deleted since\n');
    const r = await runCt(['pack', d, '-o', join(d, 'dist', 'out.ctp')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error[USAGE]');
    expect(r.stderr).toContain(join(d, 'dist', '.ct-pack-Ab12Cd'));
    expect(await readdir(join(d, 'dist'))).toEqual(['.ct-pack-Ab12Cd']);
  });

  it("refuses the output's temporary an earlier pack left in DIR", async () => {
    const d = await small('left-temp');
    await writeFile(join(d, '.out.ctp.0123456789ab.tmp'), 'partial\n');
    const r = await runCt(['pack', d, '-o', join(d, 'out.ctp')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error[USAGE]');
    expect(r.stderr).toContain(join(d, '.out.ctp.0123456789ab.tmp'));
  });

  // The review's cases: wherever in DIR they lie, whatever --out is, they are refused, never packed.
  for (const [what, out] of [['--out outside DIR', '../outside-DIR.ctp'], ['--out in DIR under another name', 'b.ctp'], ['--out beside them under another name', 'dist/b.ctp']] as const) {
    it(`refuses a scratch directory anywhere in DIR (${what})`, async () => {
      const d = await small(`anywhere-scratch-${out.replace(/\W/g, '')}`);
      await mkdir(join(d, 'dist', '.ct-pack-AbC123'), { recursive: true });
      await writeFile(join(d, 'dist', '.ct-pack-AbC123', 'secret'), 'DELETED SECRET\n');
      const r = await runCt(['pack', d, '-o', join(d, out)]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('error[USAGE]');
      expect(r.stderr).toContain(join(d, 'dist', '.ct-pack-AbC123'));
    });

    it(`refuses the temporary of another .ctp anywhere in DIR (${what})`, async () => {
      const d = await small(`anywhere-temp-${out.replace(/\W/g, '')}`);
      await mkdir(join(d, 'dist'));
      await writeFile(join(d, 'dist', '.a.ctp.0123456789ab.tmp'), 'partial\n');
      const r = await runCt(['pack', d, '-o', join(d, out)]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('error[USAGE]');
      expect(r.stderr).toContain(join(d, 'dist', '.a.ctp.0123456789ab.tmp'));
    });
  }

  it("packs a user's files whose names only look alike (another length, a directory's name on a file)", async () => {
    const d = await small('look-alike');
    await mkdir(join(d, '.ct-pack-notes'));
    await writeFile(join(d, '.ct-pack-Ab12Cd'), 'a file, not a directory\n');
    await writeFile(join(d, '.notes.txt.0123456789ab.tmp'), 'not a .ctp\n');
    const r = await runCt(['pack', d, '-o', join(dir, 'look-alike.ctp')]);
    expect(r.code).toBe(0);
  });

  it('packs when such names lie beside an output outside DIR (they are not packed there)', async () => {
    const d = await small('outside');
    const outDir = join(dir, 'outside-out');
    await mkdir(join(outDir, '.ct-pack-Zz99Yy'), { recursive: true });
    const r = await runCt(['pack', d, '-o', join(outDir, 'out.ctp')]);
    expect(r.code).toBe(0);
  });
});
