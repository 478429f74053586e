/**
 * `ct pack -o`, `ct fetch -o` and `ct sign --out` refuse an existing output unless --force, as
 * `ct keygen --out` and `ct trust-store init -o` do: before, a typo in an output name silently
 * replaced the file there (a signed bundle overwritten by an unsigned pack).
 */
import { describe, expect, it, beforeAll, afterAll } from '@jest/globals';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCt, repoRoot } from '../support/cli.js';

let dir: string;
const p = (n: string) => join(dir, n);
const hello = join(repoRoot, 'examples', 'hello');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ct-out-exists-'));
});
afterAll(async () => {
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
});
