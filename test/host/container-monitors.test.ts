/**
 * Which containers the host agent watches (host/monitor/containers.ts), with bpftrace replaced by a
 * stand-in that records what it was asked to watch: the rules come from the container's own
 * config (the verified bundle's), a start replaces the monitor of the previous run, a policy that
 * requires monitoring keeps a container that cannot be watched from starting, and containers
 * that ran on while no agent did are watched again.
 */
import { describe, expect, it } from '@jest/globals';
import { EventEmitter } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContainerMonitors, MONITOR_ANNOTATION, MONITOR_REQUIRED_ANNOTATION } from '../../host/monitor/containers.js';
import type { Monitor, MonitorEvent, MonitorTarget } from '../../host/monitor/index.js';
import { RuncRuntime } from '../../host/runtime/runc.js';
import type { OciConfig } from '../../host/enforce/types.js';

const RULES = 'version: 1\nrules:\n  - name: unexpected-exec\n    kind: exec\n    allow: [/bin/busybox]\n';

class FakeMonitor extends EventEmitter {
  stopped = false;
  /** Set to hold stop() until released (a bpftrace slow to detach). */
  hold?: Promise<void>;
  readonly diagnostics = 'bpftrace: lost';
  private readonly events: MonitorEvent[] = [];
  private wake?: () => void;
  constructor(readonly targets: readonly MonitorTarget[]) {
    super();
  }
  emitEvent(e: MonitorEvent): void {
    this.events.push(e);
    this.wake?.();
  }
  async stop(): Promise<void> {
    await this.hold;
    this.stopped = true;
    this.wake?.();
  }
  async *[Symbol.asyncIterator](): AsyncGenerator<MonitorEvent> {
    for (;;) {
      while (this.events.length) yield this.events.shift()!;
      if (this.stopped) return;
      await new Promise<void>((r) => (this.wake = r));
    }
  }
}

async function setup(o: { canTrace?: boolean; failStart?: boolean; startGate?: Promise<void>; gates?: Promise<void>[] } = {}) {
  const stateDir = mkdtempSync(join(tmpdir(), 'ct-monitors-'));
  const unified = mkdtempSync(join(tmpdir(), 'ct-monitors-cgroup-'));
  const runtime = await RuncRuntime.open({ stateDir, unifiedCgroupMount: unified });
  const started: FakeMonitor[] = [];
  const events: [string, string][] = [];
  const logs: string[] = [];
  const attempts: (readonly MonitorTarget[])[] = [];
  const monitors = new ContainerMonitors({
    runtime, canTrace: o.canTrace ?? true, log: (l) => logs.push(l),
    onEvent: (c, e) => events.push([c, e.rule]),
    start: async (targets) => {
      if (o.failStart) throw new Error('bpftrace exited (1) before attaching');
      attempts.push(targets);
      await o.startGate;
      await o.gates?.shift();
      const m = new FakeMonitor(targets);
      started.push(m);
      return m as unknown as Monitor;
    },
  });
  const create = (id: string, annotations?: Record<string, string>, replaces?: string) =>
    runtime.create(id, { ociVersion: '1.0.2', root: { path: '/nonexistent' }, process: { args: ['/bin/true'], cwd: '/' }, annotations, linux: { cgroupsPath: `/cerro-torre/${id}` } } as unknown as OciConfig, replaces ? { replaces } : {});
  return { runtime, monitors, started, events, logs, create, unified, attempts };
}

const ev = (rule: string): MonitorEvent => ({ kind: 'exec', rule, severity: 'critical', container: 'x', pid: 1, tid: 1, comm: 'sh', syscall: 'execve', detail: {}, time: new Date().toISOString() });

describe('container monitors', () => {
  it('watches a container with rules on its own cgroup, replaces the monitor at its next start, reports events under the app id', async () => {
    const { runtime, monitors, started, events, create, unified } = await setup();
    await create('web', { [MONITOR_ANNOTATION]: RULES, [MONITOR_REQUIRED_ANNOTATION]: 'false' });
    await create('plain');
    await monitors.beforeStart('plain');
    expect(started).toEqual([]);
    await monitors.beforeStart('web');
    expect(started).toHaveLength(1);
    expect(started[0].targets).toEqual([{ container: 'web', cgroupDir: join(unified, 'cerro-torre/web'), rules: expect.objectContaining({ rules: [expect.objectContaining({ name: 'unexpected-exec' })] }) }]);
    started[0].emitEvent(ev('unexpected-exec'));
    await new Promise((r) => setImmediate(r));
    expect(events).toEqual([['web', 'unexpected-exec']]);
    // The next start (a restart: a new cgroup): the old monitor is stopped, a new one watches.
    await monitors.beforeStart('web');
    expect(started.map((m) => m.stopped)).toEqual([true, false]);
    expect(monitors.watched()).toEqual(['web']);
    // The container no longer runs: the sweep stops its monitor.
    runtime.store.update('web', { status: 'stopped' });
    await monitors.sweep();
    expect(monitors.watched()).toEqual([]);
    expect(started[1].stopped).toBe(true);
    runtime.close();
  });

  it('a container whose policy requires monitoring does not start when it cannot be watched (HOST_CANNOT_ENFORCE); optional: it runs, logged', async () => {
    for (const o of [{ canTrace: false }, { failStart: true }]) {
      const { runtime, monitors, logs, create } = await setup(o);
      await create('strict', { [MONITOR_ANNOTATION]: RULES, [MONITOR_REQUIRED_ANNOTATION]: 'true' });
      await expect(monitors.beforeStart('strict')).rejects.toMatchObject({ code: 'HOST_CANNOT_ENFORCE', message: expect.stringContaining('monitoring required') });
      await create('lenient', { [MONITOR_ANNOTATION]: RULES, [MONITOR_REQUIRED_ANNOTATION]: 'false' });
      await monitors.beforeStart('lenient');
      expect(logs).toEqual([
        expect.stringMatching(/^monitor: strict not started: monitoring is required but /),
        expect.stringMatching(/^monitor: lenient not watched \(.+\); the bundle's rules are not enforced$/),
      ]);
      runtime.close();
    }
  });

  it('watches containers that run without a monitor (an agent restarted) and never throws for them', async () => {
    const { runtime, monitors, started, logs, create } = await setup();
    await create('a', { [MONITOR_ANNOTATION]: RULES, [MONITOR_REQUIRED_ANNOTATION]: 'true' });
    await create('b', { [MONITOR_ANNOTATION]: RULES, [MONITOR_REQUIRED_ANNOTATION]: 'false' });
    await create('c', { [MONITOR_ANNOTATION]: RULES });
    runtime.store.update('a', { status: 'running' });
    runtime.store.update('b', { status: 'paused' });
    await monitors.attachRunning();
    expect(monitors.watched().sort()).toEqual(['a', 'b']);
    // Told that the app already runs: its exec rules must not wait for a start they will never see.
    expect(started.map((m) => m.targets[0].running)).toEqual([true, true]);
    await monitors.attachRunning();
    expect(started).toHaveLength(2);
    // A monitor that ends by itself is said, and the container is no longer counted as watched.
    started[0].emit('exit', 1, null);
    expect(monitors.watched()).toEqual(['b']);
    expect(logs.at(-1)).toMatch(/^monitor: a no longer watched \(bpftrace ended: 1\)/);
    await monitors.close();
    expect(started.every((m) => m.stopped || m === started[0])).toBe(true);
    runtime.close();
  });

  it('a sweep stops only the monitors it saw: a start meanwhile keeps its new one', async () => {
    const { runtime, monitors, started, create } = await setup();
    for (const id of ['a', 'web']) {
      await create(id, { [MONITOR_ANNOTATION]: RULES, [MONITOR_REQUIRED_ANNOTATION]: 'true' });
      await monitors.beforeStart(id);
      runtime.store.update(id, { status: 'stopped' });
    }
    let release!: () => void;
    started[0].hold = new Promise<void>((r) => (release = r));
    const sweeping = monitors.sweep();
    // While the sweep waits on a's monitor, web is started again (a restart: a new monitor).
    runtime.store.update('web', { status: 'created' });
    await monitors.beforeStart('web');
    release();
    await sweeping;
    expect(monitors.watched()).toEqual(['web']);
    expect(started.map((m) => m.stopped)).toEqual([true, true, false]);
    runtime.close();
  });

  it('a monitor whose attach ends after close() is stopped, not kept (it would outlive the agent)', async () => {
    let open!: () => void;
    const { runtime, monitors, started, create, attempts } = await setup({ startGate: new Promise<void>((r) => (open = r)) });
    await create('late', { [MONITOR_ANNOTATION]: RULES, [MONITOR_REQUIRED_ANNOTATION]: 'false' });
    const starting = monitors.beforeStart('late');
    while (attempts.length === 0) await new Promise((r) => setTimeout(r, 5));
    await monitors.close();
    open();
    await starting;
    expect(monitors.watched()).toEqual([]);
    expect(started.map((m) => m.stopped)).toEqual([true]);
    runtime.close();
  });

  it.each([['the start attaches first'], ['the re-attach attaches first']])('two watches of one container (a re-attach beside a start) keep the start\'s monitor, for the newer cgroup, when %s', async (order) => {
    const releases: (() => void)[] = [];
    const gates = [0, 1].map(() => new Promise<void>((r) => releases.push(r)));
    const { runtime, monitors, started, create, attempts } = await setup({ gates });
    await create('web', { [MONITOR_ANNOTATION]: RULES, [MONITOR_REQUIRED_ANNOTATION]: 'true' });
    runtime.store.update('web', { status: 'running' });
    const reattach = monitors.attachRunning();
    while (attempts.length < 1) await new Promise((r) => setTimeout(r, 5));
    const start = monitors.beforeStart('web');
    while (attempts.length < 2) await new Promise((r) => setTimeout(r, 5));
    const [first, second] = order === 'the start attaches first' ? [1, 0] : [0, 1];
    releases[first]();
    await new Promise((r) => setTimeout(r, 20));
    releases[second]();
    await Promise.all([reattach, start]);
    expect(monitors.watched()).toEqual(['web']);
    const kept = started.filter((m) => !m.stopped);
    expect(kept).toHaveLength(1);
    expect(kept[0].targets[0].running).toBeUndefined();
    runtime.close();
  });

  it('a side-by-side candidate\'s events and notes are the app\'s it replaces (its page shows them during the health gate)', async () => {
    const { runtime, monitors, started, events, logs, create } = await setup();
    await create('web-2', { [MONITOR_ANNOTATION]: RULES, [MONITOR_REQUIRED_ANNOTATION]: 'false' }, 'web');
    await monitors.beforeStart('web-2');
    started[0].emitEvent(ev('unexpected-exec'));
    await new Promise((r) => setImmediate(r));
    expect(events).toEqual([['web', 'unexpected-exec']]);
    const lines: [string, string | undefined][] = [];
    const noTrace = new ContainerMonitors({ runtime, canTrace: false, log: (l, c) => lines.push([l, c]), onEvent: () => undefined });
    await noTrace.beforeStart('web-2');
    expect(lines).toEqual([[expect.stringMatching(/^monitor: web-2 not watched/), 'web']]);
    expect(logs).toEqual([]);
    await monitors.close();
    runtime.close();
  });
});
