/**
 * The in-place replace record survives a power loss (docs/host-protocol.md), seen by strace: a
 * replacing/ made for it is synced into the state directory, the record is renamed into place and
 * then replacing/ synced, and its removal is synced too (a record back from the dead would make the
 * next start roll a finished replace back: host/lifecycle/replace-record.ts).
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { dropReplaceRecord } from '../../host/lifecycle/replace-record.js';
import { repoRoot } from '../support/cli.js';
import { dirSyncAfter, openedAfter, pathsOf, traceNode, type Syscall } from '../support/strace.js';

const recordModule = pathToFileURL(join(repoRoot, 'build/host/lifecycle/replace-record.js')).href;
const indexesOf = (calls: Syscall[], ok: (c: Syscall) => boolean) => calls.flatMap((c, i) => (ok(c) ? [i] : []));

describe('replace record durability', () => {
  // The traced script runs the transpiled code.
  beforeAll(() => {
    execFileSync(process.execPath, [join(repoRoot, 'scripts/build.mjs')], { cwd: repoRoot });
  }, 120_000);

  it('syncs a new replacing/ into the state directory, each record write and its removal into replacing/', () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'ct-replace-durable-'));
    const replacing = join(stateDir, 'replacing');
    const path = join(replacing, 'prod-app.json');
    const rec = { version: 1, id: 'prod-app', rootfs: join(stateDir, 'rootfs', 'prod-app-2'), assigned: '{}\n' };
    const calls = traceNode([
      `import { saveReplaceRecord, dropReplaceRecord } from ${JSON.stringify(recordModule)};`,
      `const rec = ${JSON.stringify(rec)};`,
      `await saveReplaceRecord(${JSON.stringify(stateDir)}, rec);`,
      `await saveReplaceRecord(${JSON.stringify(stateDir)}, rec);`,
      `await dropReplaceRecord(${JSON.stringify(stateDir)}, rec.id);`,
    ].join('\n'));

    const made = calls.findIndex((c) => /^mkdir/.test(c.name) && c.result === '0' && pathsOf(c)[0] === replacing);
    const renames = indexesOf(calls, (c) => /^rename/.test(c.name) && c.result === '0' && pathsOf(c)[1] === path);
    const unlinked = calls.findIndex((c) => /^unlink/.test(c.name) && c.result === '0' && pathsOf(c)[0] === path);
    expect(made).toBeGreaterThan(-1);
    expect(renames).toHaveLength(2);
    expect(unlinked).toBeGreaterThan(renames[1]);
    // The state directory, holding the new replacing/, synced before the record goes in.
    const stateSynced = dirSyncAfter(calls, stateDir, made);
    expect(stateSynced).toBeGreaterThan(made);
    expect(stateSynced).toBeLessThan(renames[0]);
    // Each rename, then replacing/ synced; replacing/ there already: the state directory untouched.
    expect(dirSyncAfter(calls, replacing, renames[0] + 1)).toBeLessThan(renames[1]);
    expect(dirSyncAfter(calls, replacing, renames[0] + 1)).toBeGreaterThan(renames[0]);
    expect(openedAfter(calls.slice(0, renames[1]), stateDir, renames[0] + 1)).toBe(false);
    expect(dirSyncAfter(calls, replacing, renames[1] + 1)).toBeGreaterThan(renames[1]);
    // The removal, then replacing/ synced.
    expect(dirSyncAfter(calls, replacing, unlinked + 1)).toBeGreaterThan(unlinked);
  });

  it('drops a record that is not there, even without replacing/', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'ct-replace-durable-'));
    await expect(dropReplaceRecord(stateDir, 'prod-app')).resolves.toBeUndefined();
  });
});
