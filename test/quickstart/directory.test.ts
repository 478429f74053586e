/**
 * `ct quickstart --dir DIR` takes DIR only when it is new, empty or a quickstart's (quickstart.json
 * in it): another directory holds the user's files, which the run would write its keys,
 * repositories and servers over. Refused before anything is written (USAGE), as `ct unpack -o` does.
 * Runs as root with the quickstart's tools (its preflight comes first), as CI does.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../support/cli.js';

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
});
