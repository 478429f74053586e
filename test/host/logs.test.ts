/**
 * Container logs (issue 11 deliverable 5) under real runc: the supervisor's two multilog
 * processes keep stdout and stderr apart, timestamp every line, rotate at the size cap and keep
 * the configured number of files; readers merge the streams by time, resume after a cursor, and a
 * follower sees every line once even across rotations.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { getEventListeners } from 'node:events';
import { collectFacts, type HostFacts } from '../../host/facts.js';
import { buildRuntimePlan, type EnforceInput } from '../../host/enforce/index.js';
import { RuncRuntime } from '../../host/runtime/runc.js';
import { followLogs } from '../../host/logs/follow.js';
import type { LogEntry } from '../../host/logs/read.js';
import { DIGEST, makeRootfs, requireHostTools } from './support.js';

let facts: HostFacts;
let base: string;
let rootfs: string;
let rt: RuncRuntime;
let seq = 0;

function input(command: string[]): EnforceInput {
  const id = `logs-${process.pid}-${++seq}`;
  return { id, rootfs, app: { name: 'logs', imageDigest: DIGEST }, runtime: { command }, grants: { seccomp: 'required' }, cgroupsPath: `/cerro-torre/${id}` };
}

async function start(command: string[]): Promise<string> {
  const inp = input(command);
  await rt.run(inp.id, (await buildRuntimePlan(inp, facts)).config);
  return inp.id;
}

beforeAll(async () => {
  requireHostTools();
  facts = await collectFacts();
  ({ base, rootfs } = await makeRootfs());
  rt = await RuncRuntime.open({ stateDir: join(base, 'state'), unifiedCgroupMount: facts.cgroup.unifiedMount, logLimits: { maxBytes: 4096, files: 1000 } });
});

afterAll(async () => {
  for (const c of (await rt?.list()) ?? []) await rt.delete(c.id, { force: true, purge: true }).catch(() => undefined);
  rt?.close();
  if (base) rmSync(base, { recursive: true, force: true });
});

describe('container logs', () => {
  it('keeps stdout and stderr apart, in time order, with their times', async () => {
    const before = Date.now();
    const id = await start(['/bin/sh', '-c', 'echo one; sleep 0.2; echo two >&2; sleep 0.2; echo three; sleep 0.2; echo four >&2']);
    expect((await rt.wait(id)).exitCode).toBe(0);
    const { entries } = await rt.logEntries(id);
    expect(entries.map((e) => [e.stream, e.text])).toEqual([['stdout', 'one'], ['stderr', 'two'], ['stdout', 'three'], ['stderr', 'four']]);
    for (const e of entries) expect(Math.abs(Date.parse(e.time) - before)).toBeLessThan(10_000);
    expect(await rt.logs(id)).toBe('one\ntwo\nthree\nfour\n');
    const dir = rt.logDir(id);
    expect(readdirSync(join(dir, 'stdout')).filter((n) => n === 'current' || n.startsWith('@'))).toEqual(['current']);
    // Resuming after a cursor gives what follows it, and nothing twice.
    const after = await rt.logEntries(id, { since: `${entries[0].cursor}.${entries[1].cursor}` });
    expect(after.entries.map((e) => e.text)).toEqual(['three', 'four']);
    expect((await rt.logEntries(id, { since: after.cursor })).entries).toEqual([]);
  });

  it('a follower sees every line once, in order, across many rotations', async () => {
    // ~90 KB on stdout (lines numbered) over ~3 s, 20 lines on stderr: a rotation of the 4 KB
    // files every ~100 ms, none dropped (1000 files kept).
    const id = await start(['/bin/sh', '-c', 'sleep 0.5; i=0; while [ $i -lt 1200 ]; do echo "line $i ..........................................."; i=$((i+1)); if [ $((i % 20)) = 0 ]; then sleep 0.05; fi; if [ $((i % 60)) = 0 ]; then echo "err $i" >&2; fi; done']);
    const seen: LogEntry[] = [];
    await followLogs(rt.logDir(id), (e) => seen.push(e), { intervalMs: 10, ended: async () => (await rt.state(id)).status === 'stopped' });
    expect((await rt.state(id)).exitCode).toBe(0);
    const out = seen.filter((e) => e.stream === 'stdout').map((e) => e.text);
    expect(out).toHaveLength(1200);
    expect(out.every((t, i) => t.startsWith(`line ${i} `))).toBe(true);
    expect(seen.filter((e) => e.stream === 'stderr').map((e) => e.text)).toEqual(Array.from({ length: 20 }, (_, i) => `err ${(i + 1) * 60}`));
    expect(readdirSync(join(rt.logDir(id), 'stdout')).filter((n) => /^@[0-9a-f]{24}\.s$/.test(n)).length).toBeGreaterThan(10);
  });

  it('a follower polling many times keeps at most one abort listener on its signal (ct host logs -f)', async () => {
    // Each poll used to add an abort listener that only an abort removed: past 10, Node printed a
    // MaxListenersExceededWarning into the command's output (not observable from inside Jest's
    // sandboxed process, hence the count).
    const stop = new AbortController();
    const counts: number[] = [];
    const id = await start(['/bin/sh', '-c', 'echo up']);
    await followLogs(rt.logDir(id), () => undefined, {
      intervalMs: 1,
      signal: stop.signal,
      ended: async () => {
        counts.push(getEventListeners(stop.signal, 'abort').length);
        if (counts.length === 60) stop.abort();
        return false;
      },
    });
    expect(counts).toHaveLength(60);
    expect(Math.max(...counts)).toBeLessThanOrEqual(1);
  });

  it('rotates at the size cap and keeps the configured number of files per stream, the newest', async () => {
    const capped = await RuncRuntime.open({ stateDir: join(base, 'capped'), unifiedCgroupMount: facts.cgroup.unifiedMount, logLimits: { maxBytes: 4096, files: 3 } });
    try {
      const inp = input(['/bin/sh', '-c', 'i=0; while [ $i -lt 1200 ]; do echo "line $i ..........................................."; i=$((i+1)); done; echo "err end" >&2']);
      await capped.run(inp.id, (await buildRuntimePlan(inp, facts)).config);
      expect((await capped.wait(inp.id)).exitCode).toBe(0);
      // On disk: 3 files per stream at most (current included), none above 4096 bytes.
      const dir = capped.logDir(inp.id);
      const files = readdirSync(join(dir, 'stdout')).filter((n) => n === 'current' || /^@[0-9a-f]{24}\.s$/.test(n));
      expect(files.length).toBe(3);
      for (const f of files) expect(statSync(join(dir, 'stdout', f)).size).toBeLessThanOrEqual(4096);
      // What is kept is the newest: the last line is there, the first is gone.
      const text = await capped.logs(inp.id);
      expect(text).toContain('line 1199 ');
      expect(text).not.toContain('line 0 ');
      // (Each stream's line is stamped as its multilog reads it: across streams, order is as seen.)
      expect(text).toMatch(/(^|\n)err end\n/);
      // A tail bound gives the newest lines only.
      const tail = await capped.logs(inp.id, { maxBytes: 200 });
      expect(tail.length).toBeLessThanOrEqual(200);
      expect(tail.length).toBeGreaterThan(100);
      expect(text.endsWith(tail)).toBe(true);
      await capped.delete(inp.id, { purge: true });
    } finally {
      capped.close();
    }
  });

  it('refuses limits multilog cannot keep', async () => {
    await expect(RuncRuntime.open({ stateDir: join(base, 'bad'), logLimits: { maxBytes: 100, files: 2 } })).rejects.toThrow(/4096-16777215/);
    await expect(RuncRuntime.open({ stateDir: join(base, 'bad'), logLimits: { maxBytes: 8192, files: 1 } })).rejects.toThrow(/2-1000/);
  });
});
