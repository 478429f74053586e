/**
 * `ct pack -o`, `ct fetch -o` and `ct sign --out` refuse an existing output unless --force, as
 * `ct keygen --out` and `ct trust-store init -o` do: before, a typo in an output name silently
 * replaced the file there (a signed bundle overwritten by an unsigned pack).
 */
import { describe, expect, it, beforeAll, afterAll } from '@jest/globals';
import { spawn } from 'node:child_process';
import { link, lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCtp } from '../../src/bundle/read.js';
import { startLogServer, type LogServer } from '../../src/tlog/server.js';
import { runCt, repoRoot } from '../support/cli.js';

let dir: string;
let log: LogServer;
const p = (n: string) => join(dir, n);
const hello = join(repoRoot, 'examples', 'hello');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ct-out-exists-'));
  log = await startLogServer({ db: join(dir, 'log.db'), logId: 'log-a', operator: 'A' });
});
afterAll(async () => {
  await log.close();
  await rm(dir, { recursive: true, force: true });
});

function expectRefused(r: { code: number; stderr: string }, path: string): void {
  expect(r.code).toBe(11);
  expect(r.stderr).toContain('error[IO_ERROR]');
  expect(r.stderr).toContain(`${path}: already exists (use --force to replace it)`);
}

describe('an existing output file', () => {
  it('ct pack -o refuses it (exit 11, the file untouched); --force replaces it', async () => {
    await writeFile(p('app.ctp'), 'mine\n');
    expectRefused(await runCt(['pack', hello, '-o', p('app.ctp')]), p('app.ctp'));
    expect(await readFile(p('app.ctp'), 'utf8')).toBe('mine\n');
    const forced = await runCt(['pack', hello, '-o', p('app.ctp'), '--force']);
    expect(forced.code).toBe(0);
    expect(await readFile(p('app.ctp'), 'utf8')).not.toBe('mine\n');
  }, 60000);

  it('ct fetch -o refuses it before any request', async () => {
    await writeFile(p('fetched.ctp'), 'mine\n');
    expectRefused(await runCt(['fetch', '127.0.0.1:1/a/b:1', '-o', p('fetched.ctp'), '--plain-http', '--allow-address', '127.0.0.1']), p('fetched.ctp'));
    expect(await readFile(p('fetched.ctp'), 'utf8')).toBe('mine\n');
    // With --force the fetch itself is tried (and here fails: nothing listens), not refused for the file.
    const forced = await runCt(['fetch', '127.0.0.1:1/a/b:1', '-o', p('fetched.ctp'), '--plain-http', '--allow-address', '127.0.0.1', '--force']);
    expect(forced.code).toBe(12);
    expect(forced.stderr).not.toContain('already exists');
  }, 60000);

  it('ct sign --out refuses another existing file, not the input itself (signing in place)', async () => {
    expect((await runCt(['keygen', '--out', p('k'), '--no-password'])).code).toBe(0);
    expect((await runCt(['pack', hello, '-o', p('u.ctp')])).code).toBe(0);
    await writeFile(p('signed.ctp'), 'mine\n');
    const log = ['--log', 'log-a=http://127.0.0.1:1'];
    expectRefused(await runCt(['sign', p('u.ctp'), '--key', p('k.key'), ...log, '--out', p('signed.ctp')]), p('signed.ctp'));
    expect(await readFile(p('signed.ctp'), 'utf8')).toBe('mine\n');
    // --force, or --out naming the input: the signing goes ahead (and fails here at the closed log).
    for (const args of [['--out', p('signed.ctp'), '--force'], ['--out', p('u.ctp')]]) {
      const r = await runCt(['sign', p('u.ctp'), '--key', p('k.key'), ...log, ...args]);
      expect(r.stderr).not.toContain('already exists');
      expect(r.code).toBe(12);
    }
  }, 60000);

  it('ct pack -o: a file put at the output while the pack runs is refused, not replaced (exit 11)', async () => {
    const out = p('race.ctp');
    const child = spawn(process.execPath, [join(repoRoot, 'bin', 'ct.js'), 'pack', hello, '-o', out], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exit = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
    // Once the output's temporary exists, the check at the start is long past.
    const started = Date.now();
    while (!(await readdir(dir)).some((n) => n.startsWith('.race.ctp.'))) {
      if (Date.now() - started > 30000) throw new Error(`the pack's temporary never appeared: ${stderr}`);
      await new Promise((r) => setTimeout(r, 1));
    }
    await writeFile(out, 'precious\n');
    expect(await exit).toBe(11);
    expect(stderr).toContain(`error[IO_ERROR]: ${out}: already exists (use --force to replace it)`);
    expect(await readFile(out, 'utf8')).toBe('precious\n');
    expect((await readdir(dir)).filter((n) => n.startsWith('.race.ctp.'))).toEqual([]);
  }, 60000);

  it('an output naming a directory is refused up front, with or without --force', async () => {
    await mkdir(p('a-dir'));
    for (const force of [[], ['--force']]) {
      const r = await runCt(['pack', hello, '-o', p('a-dir'), ...force]);
      expect(r.code).toBe(11);
      expect(r.stderr).toContain(`error[IO_ERROR]: ${p('a-dir')}: is a directory`);
      const f = await runCt(['fetch', '127.0.0.1:1/a/b:1', '-o', p('a-dir'), '--plain-http', '--allow-address', '127.0.0.1', ...force]);
      expect(f.code).toBe(11);
      expect(f.stderr).toContain('is a directory');
    }
    expect(await readdir(p('a-dir'))).toEqual([]);
  }, 60000);

  it('ct sign --out a symbolic link to the input signs the input in place; the link stays a link', async () => {
    expect((await runCt(['keygen', '--out', p('k2'), '--no-password'])).code).toBe(0);
    expect((await runCt(['pack', hello, '-o', p('in.ctp')])).code).toBe(0);
    await symlink('in.ctp', p('in-link.ctp'));
    const r = await runCt(['sign', p('in.ctp'), '--key', p('k2.key'), '--log', `log-a=${log.url}`, '--out', p('in-link.ctp')]);
    expect(r.code).toBe(0);
    expect((await lstat(p('in-link.ctp'))).isSymbolicLink()).toBe(true);
    expect((await openCtp(p('in.ctp'))).entries.has('attestations/bundle.json')).toBe(true);
    // The input named by a link, no --out: the same (the link was replaced by a signed copy before).
    expect((await runCt(['pack', hello, '-o', p('in2.ctp')])).code).toBe(0);
    await symlink('in2.ctp', p('in2-link.ctp'));
    expect((await runCt(['sign', p('in2-link.ctp'), '--key', p('k2.key'), '--log', `log-a=${log.url}`])).code).toBe(0);
    expect((await lstat(p('in2-link.ctp'))).isSymbolicLink()).toBe(true);
    expect((await openCtp(p('in2.ctp'))).entries.has('attestations/bundle.json')).toBe(true);
  }, 60000);

  it('ct sign --out another hard link to the input is refused (USAGE), nothing written', async () => {
    expect((await runCt(['keygen', '--out', p('k3'), '--no-password'])).code).toBe(0);
    expect((await runCt(['pack', hello, '-o', p('h.ctp')])).code).toBe(0);
    await link(p('h.ctp'), p('h-hard.ctp'));
    const before = await readFile(p('h.ctp'));
    const r = await runCt(['sign', p('h.ctp'), '--key', p('k3.key'), '--log', `log-a=${log.url}`, '--out', p('h-hard.ctp')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error[USAGE]: --out ${p('h-hard.ctp')}: another hard link to ${p('h.ctp')}`);
    expect((await readFile(p('h.ctp'))).equals(before)).toBe(true);
    expect((await lstat(p('h-hard.ctp'))).nlink).toBe(2);
  }, 60000);
});
