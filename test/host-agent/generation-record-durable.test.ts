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
import { dirSyncAfter, fdOf, isOpen, pathsOf, renameOnto, syncedFd, traceNode } from '../support/strace.js';

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

describe('generation record save', () => {
  beforeAll(() => {
    execFileSync(process.execPath, [join(repoRoot, 'scripts/build.mjs')], { cwd: repoRoot });
  }, 120_000);

  // A save is synced before it resolves (the agent acts on an assignment only after it): one write
  // on a descriptor opened with O_DSYNC, the guarantee of write + fdatasync in one system call
  // (~half the CPU per assignment). The marker open after `await save` orders the two.
  it('is one write on an O_DSYNC descriptor, done before the save resolves', () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'ct-generation-save-'));
    const marker = join(stateDir, 'after-save');
    const calls = traceNode([
      `import { openSync } from 'node:fs';`,
      `import { GenerationRecord } from ${JSON.stringify(recordModule)};`,
      `const r = await GenerationRecord.open(${JSON.stringify(stateDir)}, '11111111-1111-4111-8111-111111111111', 7);`,
      'await r.save(8);',
      `try { openSync(${JSON.stringify(marker)}); } catch {}`,
      'await r.save(9);',
      'await r.close();',
    ].join('\n'), ['pwrite64', 'write']);
    const record = join(stateDir, 'generation');
    // The descriptor the saves write through: the record opened read-write after it was made.
    const opened = calls.findIndex((c) => isOpen(c) && pathsOf(c)[0] === record && /O_RDWR/.test(c.args) && !/O_CREAT/.test(c.args));
    expect(opened).toBeGreaterThan(-1);
    expect(calls[opened].args).toMatch(/O_DSYNC|O_SYNC/);
    const fd = fdOf(calls[opened])!;
    const writes = calls.map((c, i) => ({ c, i })).filter(({ c, i }) => i > opened && c.name === 'pwrite64' && Number(c.args.split(',')[0]) === fd);
    expect(writes.map(({ c }) => c.result)).toEqual(['256', '256']);
    const markerAt = calls.findIndex((c) => isOpen(c) && pathsOf(c)[0] === marker);
    expect(writes[0].i).toBeLessThan(markerAt);
    expect(writes[1].i).toBeGreaterThan(markerAt);
    // Nothing else to sync: no fdatasync of the record per save.
    expect(calls.slice(opened).filter((c) => syncedFd(c) === fd)).toEqual([]);
  });
});
