// The runtime tells "running" from files (runc's pid file, the init's cgroup, the freezer), not by
// starting `runc state`: a wrapper around runc records every subcommand the runtime starts.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { chmod, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { buildRuntimePlan, type EnforceInput } from '../../host/enforce/index.js';
import { collectFacts, type HostFacts } from '../../host/facts.js';
import { RuncRuntime } from '../../host/runtime/index.js';
import { readLogs } from '../../host/logs/read.js';
import { DIGEST, makeRootfs, requireHostTools } from './support.js';

let facts: HostFacts;
let base: string;
let rootfs: string;
let rt: RuncRuntime;
let calls: string;

function input(id: string, command: string[]): EnforceInput {
  return { id, rootfs, app: { name: 'live', imageDigest: DIGEST }, runtime: { command }, grants: { seccomp: 'required' }, cgroupsPath: `/cerro-torre/${id}` };
}

/** The runc subcommands started since the last call (the word after `--root DIR` and runc's own flags). */
function subcommands(): string[] {
  const lines = readFileSync(calls, 'utf8').split('\n').filter(Boolean);
  writeFileSync(calls, '');
  return lines.map((l) => l.split(' ').find((w, i, all) => i > 1 && !w.startsWith('-') && !all[i - 1].startsWith('--')) ?? l);
}

beforeAll(async () => {
  requireHostTools();
  facts = await collectFacts();
  ({ base, rootfs } = await makeRootfs());
  calls = join(base, 'calls');
  writeFileSync(calls, '');
  const wrapper = join(base, 'runc-wrapper');
  writeFileSync(wrapper, `#!/bin/sh\necho "$*" >>'${calls}'\nexec runc "$@"\n`);
  await chmod(wrapper, 0o755);
  rt = await RuncRuntime.open({ stateDir: join(base, 'state'), runc: wrapper, unifiedCgroupMount: facts.cgroup.unifiedMount });
});

afterAll(async () => {
  for (const c of rt?.store.list() ?? []) await rt.delete(c.id, { force: true }).catch(() => {});
  rt?.close();
  if (base) await rm(base, { recursive: true, force: true });
});

/**
 * A runtime of its own, whose `tool` (runc or multilog) is the script given, for one container
 * `id`: `body` runs with both, and the container and the runtime are removed after it.
 */
async function withSlowTool(tool: 'runc' | 'multilog', script: string, name: string, body: (rt: RuncRuntime, id: string) => Promise<void>): Promise<void> {
  const path = join(base, `${tool}-${name}`);
  writeFileSync(path, script);
  await chmod(path, 0o755);
  const slowRt = await RuncRuntime.open({ stateDir: join(base, `state-${name}`), [tool]: path, unifiedCgroupMount: facts.cgroup.unifiedMount });
  const id = `live-${process.pid}-${name}`;
  try {
    await body(slowRt, id);
  } finally {
    await slowRt.delete(id, { force: true }).catch(() => {});
    slowRt.close();
  }
}

describe('container liveness without runc state', () => {
  it('answers state() of a running container from files, and asks runc only when they cannot tell', async () => {
    const id = `live-${process.pid}-1`;
    const plan = await buildRuntimePlan(input(id, ['/bin/sh', '-c', 'while true; do sleep 1; done']), facts);
    const rec = await rt.run(id, plan.config);
    expect(rec.status).toBe('running');
    // The pid is the container's init, in the container's cgroup.
    expect(readFileSync(`/proc/${rec.pid}/cgroup`, 'utf8')).toContain(`0::/cerro-torre/${id}`);
    subcommands();
    for (let i = 0; i < 3; i++) expect((await rt.state(id)).status).toBe('running');
    expect(subcommands()).toEqual([]);
    // Paused behind the runtime's back: the freezer is read, and runc has the last word.
    execFileSync('runc', ['--root', rt.root, 'pause', id]);
    expect((await rt.state(id)).status).toBe('paused');
    expect(subcommands()).toContain('state');
    execFileSync('runc', ['--root', rt.root, 'resume', id]);
    expect((await rt.state(id)).status).toBe('running');
    subcommands();
    // A recorded pid that is not in the container's cgroup (reused by another process) is not
    // taken as the container: runc is asked.
    rt.store.update(id, { pid: process.pid });
    expect((await rt.state(id)).status).toBe('running');
    expect(subcommands()).toEqual(['state']);
    expect((await rt.stop(id, 300)).exitCode).toBe(137);
    await rt.delete(id);
  });

  it('an app that exits at once is reported running then stopped with its code; a refused start is RUNTIME_FAILED', async () => {
    const id = `live-${process.pid}-2`;
    const plan = await buildRuntimePlan(input(id, ['/bin/sh', '-c', 'exit 3']), facts);
    const rec = await rt.run(id, plan.config);
    const done = rec.status === 'stopped' ? rec : await rt.wait(id, 10_000);
    expect(done.exitCode).toBe(3);
    expect(rt.store.changes().filter((c) => c.id === id).map((c) => c.status)).toEqual(['created', 'running', 'stopped']);
    await rt.delete(id);
    const bad = `live-${process.pid}-3`;
    const badPlan = await buildRuntimePlan(input(bad, ['/bin/no-such-binary']), facts);
    await expect(rt.run(bad, badPlan.config)).rejects.toMatchObject({ code: 'RUNTIME_FAILED' });
  });
  it('stop reports the exit code when the supervisor writes it seconds after runc returned (loggers still draining)', async () => {
    // A logger that lingers 2 s after its pipe closes: the supervisor's exit file comes that much
    // after runc has said "stopped" (what a loaded host does to multilog). The code was reported
    // unknown after 1 s.
    await withSlowTool('multilog', '#!/bin/sh\nmultilog "$@"\nsleep 2\n', 'slow', async (slowRt, id) => {
      const plan = await buildRuntimePlan(input(id, ['/bin/sh', '-c', 'trap "exit 3" TERM; echo ready; while true; do sleep 0.1; done']), facts);
      expect((await slowRt.run(id, plan.config)).status).toBe('running');
      // The trap is set once it said so (a TERM before it, to the shell as PID 1, is ignored: 137 after the grace).
      for (let i = 0; i < 200 && !(await readLogs(slowRt.logDir(id))).entries.some((l) => l.text === 'ready'); i++) await new Promise((r) => setTimeout(r, 50));
      const stopped = await slowRt.stop(id, 5000);
      expect(stopped).toMatchObject({ status: 'stopped', exitKnown: true, exitCode: 3 });
    });
  });
  it('a container being started reads as created, not stopped, while runc has not started it yet', async () => {
    // runc's `run` held back 1.5 s (a loaded host): state() asked meanwhile, as `ct host ps` or an
    // agent's pass does, said stopped with the code unknown and recorded a stop that never was.
    await withSlowTool('runc', '#!/bin/sh\ncase " $* " in *" run "*) sleep 1.5 ;; esac\nexec runc "$@"\n', 'starting', async (slowRt, id) => {
      const plan = await buildRuntimePlan(input(id, ['/bin/sh', '-c', 'while true; do sleep 1; done']), facts);
      await slowRt.create(id, plan.config);
      const started = slowRt.start(id);
      await new Promise((r) => setTimeout(r, 300));
      expect((await slowRt.state(id)).status).toBe('created');
      expect((await started).status).toBe('running');
      expect(slowRt.store.changes().filter((c) => c.id === id).map((c) => c.status)).not.toContain('stopped');
    });
  });
  it('a recorded supervisor pid that another process has by now is not taken for the supervisor', async () => {
    // The start's supervisor died without a word and its pid went to another process (here, one
    // that lives on): the container was read as being started for as long as that process lived.
    const id = `live-${process.pid}-reused`;
    const plan = await buildRuntimePlan(input(id, ['/bin/true']), facts);
    await rt.create(id, plan.config);
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      rt.store.update(id, { startedAt: new Date().toISOString(), supervisorPid: other.pid! });
      expect(await rt.state(id)).toMatchObject({ status: 'stopped', exitKnown: false, exitCode: null });
      expect((await rt.wait(id, 1000)).status).toBe('stopped');
    } finally {
      other.kill('SIGKILL');
      await rt.delete(id, { force: true });
    }
  });

  it("a previous run's supervisor, still draining when the container was started again, does not stop the new run with its code", async () => {
    // The loggers outlive stop()'s wait for the exit file (EXIT_FILE_WAIT_MS): restart() starts a
    // new run, and the old supervisor then writes exit 3 into the new run's exit file. It was
    // read as the new run's: a running container recorded stopped (exit 3), for good.
    await withSlowTool('multilog', '#!/bin/sh\nmultilog "$@"\nsleep 13\n', 'stale', async (slowRt, id) => {
      const plan = await buildRuntimePlan(input(id, ['/bin/sh', '-c', 'trap "exit 3" TERM; echo ready; while true; do sleep 0.1; done']), facts);
      expect((await slowRt.run(id, plan.config)).status).toBe('running');
      for (let i = 0; i < 200 && !(await readLogs(slowRt.logDir(id))).entries.some((l) => l.text === 'ready'); i++) await new Promise((r) => setTimeout(r, 50));
      const again = await slowRt.restart(id, 5000);
      expect(again.status).toBe('running');
      // Past the old supervisor's late write (its loggers end 13 s after the app).
      await new Promise((r) => setTimeout(r, 6_000));
      const now = await slowRt.state(id);
      expect([now.status, now.pid, now.exitKnown]).toEqual(['running', again.pid, false]);
    });
  }, 90_000);

  it("a previous run's logger still holding the log directory is ended before the new run starts: the new run's output is logged", async () => {
    // multilog itself drains late (alive, holding its directory's lock, 13 s past the app's end):
    // the new run's loggers found the directory locked and exited at once, and the restarted
    // container ran with nothing of its output kept (review finding, pre-existing).
    await withSlowTool('multilog', '#!/bin/sh\n{ cat; sleep 13; } | multilog "$@"\n', 'locked', async (slowRt, id) => {
      const plan = await buildRuntimePlan(input(id, ['/bin/sh', '-c', 'trap "exit 3" TERM; echo "run $$ $(cat /proc/uptime)"; while true; do echo tick; sleep 0.2; done']), facts);
      expect((await slowRt.run(id, plan.config)).status).toBe('running');
      const lines = async () => (await readLogs(slowRt.logDir(id))).entries.map((l) => l.text);
      for (let i = 0; i < 200 && !(await lines()).some((t) => t.startsWith('run ')); i++) await new Promise((r) => setTimeout(r, 50));
      const again = await slowRt.restart(id, 5000);
      expect(again.status).toBe('running');
      // The new run's first line reaches the log, and its ticks keep coming.
      let runs: string[] = [];
      for (let i = 0; i < 100 && runs.length < 2; i++) {
        await new Promise((r) => setTimeout(r, 50));
        runs = (await lines()).filter((t) => t.startsWith('run '));
      }
      expect(runs).toHaveLength(2);
      const ticks = (await lines()).length;
      await new Promise((r) => setTimeout(r, 1_500));
      expect((await lines()).length).toBeGreaterThan(ticks);
      expect((await slowRt.state(id)).status).toBe('running');
    });
  }, 90_000);
});
