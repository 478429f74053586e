/**
 * `ct quickstart --dir DIR` takes DIR only when it is new, empty, a quickstart's (quickstart.json
 * in it) or what a killed first run left (its marker, .ct-quickstart, and its key): another
 * directory holds the user's files, which the run would write its keys, repositories and servers
 * over, or a key of the user's it would trust as its builder. Refused before anything is written
 * (USAGE), as `ct unpack -o` does.
 * Runs as root with the quickstart's tools (its preflight comes first), as CI does.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { interruptAndWait, repoRoot } from '../support/cli.js';

let base: string;
beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('quickstart tests run as root (CI does); this process is not root');
  base = mkdtempSync(join(tmpdir(), 'ct-qs-dir-'));
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

const quickstart = (dir: string) => spawnSync(process.execPath, [join(repoRoot, 'bin', 'ct.js'), 'quickstart', '--dir', dir], { encoding: 'utf8', timeout: 60_000 });

describe('ct quickstart --dir', () => {
  it("refuses an existing directory that is not a quickstart's, and leaves its files as they were", () => {
    const dir = join(base, 'project');
    mkdirSync(dir);
    writeFileSync(join(dir, 'signer.key'), 'my own key\n');
    writeFileSync(join(dir, 'trust.json'), '{"mine": true}\n');
    const r = quickstart(dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^error\[USAGE\]/);
    expect(readdirSync(dir).sort()).toEqual(['signer.key', 'trust.json']);
    expect(readFileSync(join(dir, 'trust.json'), 'utf8')).toBe('{"mine": true}\n');
    expect(readFileSync(join(dir, 'signer.key'), 'utf8')).toBe('my own key\n');
  });

  it('refuses a file given as --dir', () => {
    const file = join(base, 'a-file');
    writeFileSync(file, 'x\n');
    const r = quickstart(file);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^error\[USAGE\]/);
    expect(readFileSync(file, 'utf8')).toBe('x\n');
  });

  it("refuses a directory holding only the user's signer.key and signer.pub (ct keygen --out signer)", () => {
    const dir = join(base, 'mykeys');
    mkdirSync(dir);
    keygen(dir);
    const before = readFileSync(join(dir, 'signer.key'), 'utf8');
    const r = quickstart(dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^error\[USAGE\]/);
    expect(readdirSync(dir).sort()).toEqual(['signer.key', 'signer.pub']);
    expect(readFileSync(join(dir, 'signer.key'), 'utf8')).toBe(before);
  });

  it('goes on from a first run killed after its marker and key, with that key', async () => {
    const dir = join(base, 'killed-first-run');
    mkdirSync(dir);
    writeFileSync(join(dir, '.ct-quickstart'), 'made by ct quickstart\n');
    const made = keygen(dir);
    const child = spawn(process.execPath, [join(repoRoot, 'bin', 'ct.js'), 'quickstart', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (c) => (err += c));
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (c) => {
          out += c;
          if (out.includes('\n')) resolve();
        });
        child.on('exit', () => reject(new Error(`ct quickstart ended first: ${err}`)));
      });
    } finally {
      await interruptAndWait(child);
    }
    expect(out.split('\n')[0]).toBe(`set up in ${dir}, going on from a first run that was interrupted`);
    const state = JSON.parse(readFileSync(join(dir, 'quickstart.json'), 'utf8')) as { keyId: string };
    expect(state.keyId).toBe(made.id);
  }, 60_000);
});

/** `ct keygen --out signer --no-password` run in `dir`, as a user makes a key. */
function keygen(dir: string): { id: string } {
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'ct.js'), 'keygen', '--out', 'signer', '--no-password', '--json'], { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ct keygen: ${r.stderr}`);
  return JSON.parse(r.stdout) as { id: string };
}
