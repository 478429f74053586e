/**
 * The generation record is made with its directory synced (strace): a save's fdatasync reaches the
 * file's blocks, not its name, and once enrolment.json says the record exists, a record lost in a
 * power loss would stop the agent (docs/host-protocol.md "Assignments and generations").
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '../support/cli.js';
import { dirSyncAfter, renameOnto, traceNode } from '../support/strace.js';

const recordModule = pathToFileURL(join(repoRoot, 'build/host/agent/generation-record.js')).href;

describe('generation record durability', () => {
  // The traced script runs the transpiled code.
  beforeAll(() => {
    execFileSync(process.execPath, [join(repoRoot, 'scripts/build.mjs')], { cwd: repoRoot });
  }, 120_000);

  it('is renamed into place, then its directory synced', () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'ct-generation-durable-'));
    const calls = traceNode([
      `import { GenerationRecord } from ${JSON.stringify(recordModule)};`,
      `const r = await GenerationRecord.open(${JSON.stringify(stateDir)}, '11111111-1111-4111-8111-111111111111', 7);`,
      'await r.close();',
    ].join('\n'));
    const renamed = renameOnto(calls, join(stateDir, 'generation'));
    expect(renamed).toBeGreaterThan(-1);
    expect(dirSyncAfter(calls, stateDir, renamed + 1)).toBeGreaterThan(renamed);
  });
});
