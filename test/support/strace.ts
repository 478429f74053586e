/**
 * Runs a Node ESM snippet under strace and returns its file-system system calls, in the order
 * they completed: how tests check what reaches the disk and when (an fsync of a directory after a
 * rename), which no file-system API can observe afterwards. strace is part of the test set-up
 * (README, .ci/run): a missing one, or a kernel that refuses ptrace, fails the test, never skips it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const STRACE = '/usr/bin/strace';

export interface Syscall {
  pid: number;
  name: string;
  /** The argument text as strace prints it (strings quoted, up to 4096 characters each). */
  args: string;
  /** The return value text (`18`, `0`, `-1 ENOENT (No such file or directory)`). */
  result: string;
}

const TRACED = 'openat,open,fsync,fdatasync,rename,renameat,renameat2,mkdir,mkdirat,unlink,unlinkat';

/**
 * The calls `script` (ESM, run with `node --input-type=module -e`) made; throws when it or strace
 * failed. `extra`: more system calls to trace (e.g. `pwrite64`).
 */
export function traceNode(script: string, extra: string[] = []): Syscall[] {
  const dir = mkdtempSync(join(tmpdir(), 'ct-strace-'));
  try {
    const out = join(dir, 'trace');
    const r = spawnSync(STRACE, ['-f', '-qq', '-s', '4096', '-e', `trace=${[TRACED, ...extra].join(',')}`, '-o', out, process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8' });
    if (r.error) throw new Error(`${STRACE} could not run (${r.error.message}): install strace (README, .ci/run)`);
    if (r.status !== 0) throw new Error(`strace or the script failed (${r.status}): ${r.stderr}`);
    return parseTrace(readFileSync(out, 'utf8'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** strace -f output: a call other threads interrupted is joined up from its two lines, and placed where it returned. */
export function parseTrace(text: string): Syscall[] {
  const calls: Syscall[] = [];
  const pending = new Map<string, { name: string; args: string }>();
  for (const line of text.split('\n')) {
    let m = /^(\d+)\s+(\w+)\((.*) <unfinished \.\.\.>$/.exec(line);
    if (m) {
      pending.set(`${m[1]} ${m[2]}`, { name: m[2], args: m[3] });
      continue;
    }
    m = /^(\d+)\s+<\.\.\. (\w+) resumed>(.*)\)\s+=\s+(.*)$/.exec(line);
    if (m) {
      const head = pending.get(`${m[1]} ${m[2]}`);
      pending.delete(`${m[1]} ${m[2]}`);
      calls.push({ pid: Number(m[1]), name: m[2], args: `${head?.args ?? ''}${m[3]}`, result: m[4] });
      continue;
    }
    m = /^(\d+)\s+(\w+)\((.*)\)\s+=\s+(.*)$/.exec(line);
    if (m) calls.push({ pid: Number(m[1]), name: m[2], args: m[3], result: m[4] });
  }
  return calls;
}

/** The quoted strings among a call's arguments (paths), unescaped for plain ASCII paths. */
export function pathsOf(c: Syscall): string[] {
  return [...c.args.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1].replace(/\\(.)/g, '$1'));
}

/** The fd a successful open returned, else undefined. */
export function fdOf(c: Syscall): number | undefined {
  return /^\d+$/.test(c.result) ? Number(c.result) : undefined;
}

/** The first fd argument of an fsync / fdatasync. */
export function syncedFd(c: Syscall): number | undefined {
  return c.name === 'fsync' || c.name === 'fdatasync' ? Number(c.args) : undefined;
}

export const isOpen = (c: Syscall) => c.name === 'openat' || c.name === 'open';

/**
 * Where `dir` was opened read-only and then fsynced through that very fd, at or after index
 * `from`: the index of the fsync, or -1. (fds are reused, so the fsync must follow its own open.)
 */
export function dirSyncAfter(calls: Syscall[], dir: string, from = 0): number {
  for (let i = from; i < calls.length; i++) {
    const c = calls[i];
    if (!(isOpen(c) && pathsOf(c)[0] === dir && /O_RDONLY/.test(c.args) && !/O_CREAT/.test(c.args))) continue;
    const fd = fdOf(c);
    if (fd === undefined) continue;
    for (let j = i + 1; j < calls.length; j++) {
      if (syncedFd(calls[j]) === fd && calls[j].result === '0') return j;
      // The fd was closed and handed to another open first: not this directory's sync.
      if (isOpen(calls[j]) && fdOf(calls[j]) === fd) break;
    }
  }
  return -1;
}

/** The index of the successful rename onto `target`, or -1. */
export function renameOnto(calls: Syscall[], target: string): number {
  return calls.findIndex((c) => /^rename/.test(c.name) && c.result === '0' && pathsOf(c)[1] === target);
}

/** Whether `dir` was opened at all at or after `from` (a sync needs an open first). */
export function openedAfter(calls: Syscall[], dir: string, from = 0): boolean {
  return calls.slice(from).some((c) => isOpen(c) && pathsOf(c)[0] === dir);
}
