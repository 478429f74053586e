import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { runCt } from '../support/cli.js';

const cwd = mkdtempSync(join(tmpdir(), 'ct-empty-state-'));
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

describe('--state-dir', () => {
  // An unset variable (`--state-dir "$DIR"`) must not make the working directory a state directory.
  it.each([[['host', 'ps']], [['run', 'x.ctp']]])('an empty value is refused (USAGE) and nothing is written: ct %j', async (args) => {
    const r = await runCt([...args, '--state-dir', ''], { cwd });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error\[USAGE\]: option '--state-dir <dir>' argument '' is invalid\. It must not be empty/m);
    expect(readdirSync(cwd)).toEqual([]);
  });
});
