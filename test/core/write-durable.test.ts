/**
 * writeFileAtomic(…, { durable: true }), seen by strace: the file is fsynced, renamed onto its
 * name, and only then is its directory opened and fsynced (what makes the new name survive a power
 * loss); directories the write had to create are synced into their parents too. Without the
 * option nothing more is done (it is on hot paths).
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '../support/cli.js';
import { dirSyncAfter, fdOf, isOpen, openedAfter, pathsOf, renameOnto, syncedFd, traceNode } from '../support/strace.js';

const fsModule = pathToFileURL(join(repoRoot, 'build/src/core/fs.js')).href;

describe('writeFileAtomic durable', () => {
  // The traced script runs the transpiled code.
  beforeAll(() => {
    execFileSync(process.execPath, [join(repoRoot, 'scripts/build.mjs')], { cwd: repoRoot });
  }, 120_000);

  it('fsyncs the file, renames it onto its name, then fsyncs the directory', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ct-durable-'));
    const path = join(dir, 'rec.json');
    const calls = traceNode(`import { writeFileAtomic } from ${JSON.stringify(fsModule)}; await writeFileAtomic(${JSON.stringify(path)}, 'one', 0o600, { durable: true });`);
    expect(readFileSync(path, 'utf8')).toBe('one');

    const renamed = renameOnto(calls, path);
    expect(renamed).toBeGreaterThan(-1);
    const tmp = pathsOf(calls[renamed])[0];
    // The temporary's own fsync comes before the rename...
    const created = calls.findIndex((c) => isOpen(c) && pathsOf(c)[0] === tmp && /O_CREAT/.test(c.args));
    const tmpFd = fdOf(calls[created]);
    expect(calls.slice(created + 1, renamed).some((c) => syncedFd(c) === tmpFd && c.result === '0')).toBe(true);
    // ...the directory's after it (the old code never opened the directory at all).
    expect(dirSyncAfter(calls, dir, renamed + 1)).toBeGreaterThan(renamed);
  });

  it('syncs each directory it had to create into its parent', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ct-durable-'));
    const path = join(dir, 'a', 'b', 'rec.json');
    const calls = traceNode(`import { writeFileAtomic } from ${JSON.stringify(fsModule)}; await writeFileAtomic(${JSON.stringify(path)}, 'two', 0o600, { durable: true });`);
    expect(readFileSync(path, 'utf8')).toBe('two');
    const made = calls.findIndex((c) => /^mkdir/.test(c.name) && c.result === '0' && pathsOf(c)[0] === join(dir, 'a', 'b'));
    expect(made).toBeGreaterThan(-1);
    // dir holds the new a, a the new b: both synced after b exists; b (holding rec.json) after the rename.
    expect(dirSyncAfter(calls, dir, made)).toBeGreaterThan(made);
    expect(dirSyncAfter(calls, join(dir, 'a'), made)).toBeGreaterThan(made);
    const renamed = renameOnto(calls, path);
    expect(dirSyncAfter(calls, join(dir, 'a', 'b'), renamed + 1)).toBeGreaterThan(renamed);
  });

  it('does no directory sync unless asked', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ct-durable-'));
    mkdirSync(join(dir, 'x'));
    const path = join(dir, 'x', 'rec.json');
    const calls = traceNode(`import { writeFileAtomic } from ${JSON.stringify(fsModule)}; await writeFileAtomic(${JSON.stringify(path)}, 'three');`);
    expect(readFileSync(path, 'utf8')).toBe('three');
    const renamed = renameOnto(calls, path);
    expect(renamed).toBeGreaterThan(-1);
    expect(openedAfter(calls, join(dir, 'x'), renamed + 1)).toBe(false);
  });
});
