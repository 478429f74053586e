/**
 * Issue 11 deliverable 2 on the host itself, under real runc: `ct host ps|stop|start|restart|kill|
 * pause|resume|rm|logs` (the real `ct` binary) on a host's state directory, and the manifest's
 * restart policy (never | on-failure | always, exponential backoff) applied by the agent's runner,
 * reported as restarts with the exit code of the run that ended.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectFacts, type HostFacts } from '../../host/facts.js';
import { buildRuntimePlan, type EnforceInput } from '../../host/enforce/index.js';
import { RuncRuntime } from '../../host/runtime/runc.js';
import { MONITOR_ANNOTATION, MONITOR_REQUIRED_ANNOTATION } from '../../host/monitor/containers.js';
import { LocalRunner } from '../../host/agent/runner.js';
import { PolicyStore } from '../../src/policy/store.js';
import { runCt } from '../support/cli.js';
import { runcState, until } from '../host-agent/fixture.js';
import { DIGEST, makeRootfs, requireHostTools } from './support.js';

let facts: HostFacts;
let base: string;
let rootfs: string;
let rt: RuncRuntime;
let runner: LocalRunner;
let seq = 0;
const stateDir = () => join(base, 'state');

async function create(command: string[], restart?: 'never' | 'on-failure' | 'always'): Promise<string> {
  const id = `lc-${process.pid}-${++seq}`;
  const inp: EnforceInput = { id, rootfs, app: { name: `app${seq}`, imageDigest: DIGEST }, runtime: { command }, grants: { seccomp: 'required' }, cgroupsPath: `/cerro-torre/${id}` };
  await rt.run(id, (await buildRuntimePlan(inp, facts)).config, { appName: `app${seq}`, imageDigest: DIGEST });
  mkdirSync(join(stateDir(), 'assigned'), { recursive: true });
  writeFileSync(join(stateDir(), 'assigned', `${id}.json`), JSON.stringify({ bundleDigest: DIGEST, generation: seq, runtime: { restart, stop_grace_period: 1 } }));
  return id;
}

const ct = async (...args: string[]) => {
  const r = await runCt(['host', ...args, '--state-dir', stateDir()]);
  if (r.code !== 0) throw new Error(`ct host ${args.join(' ')} → ${r.code}\n${r.stderr}`);
  return r;
};

beforeAll(async () => {
  requireHostTools();
  facts = await collectFacts();
  ({ base, rootfs } = await makeRootfs());
  rt = await RuncRuntime.open({ stateDir: stateDir(), unifiedCgroupMount: facts.cgroup.unifiedMount });
  runner = new LocalRunner({ stateDir: stateDir(), trust: () => undefined, policies: new PolicyStore([]), facts: async () => facts, runtime: rt });
});

afterAll(async () => {
  for (const c of (await rt?.list()) ?? []) await rt.delete(c.id, { force: true, purge: true }).catch(() => undefined);
  rt?.close();
  if (base) rmSync(base, { recursive: true, force: true });
});

describe('ct host commands on the host', () => {
  it('ps, stop (held), start, pause/resume, kill -s, logs, rm change runc state', async () => {
    const id = await create(['/bin/sh', '-c', 'trap "echo got-term; exit 3" TERM; echo hello; echo oops >&2; while true; do sleep 0.1; done']);
    let ps = (await ct('ps')).stdout;
    expect(ps.split('\n')[0]).toMatch(/^CONTAINER\s+APP\s+STATE\s+HEALTH\s+RESTARTS\s+EXIT\s+REASON\s+SINCE$/);
    expect(ps).toMatch(new RegExp(`${id}\\s+app\\d+\\s+running\\s+none\\s+0\\s+-\\s+-`));

    await ct('pause', id);
    expect(runcState(stateDir(), id)?.status).toBe('paused');
    await ct('resume', id);
    expect(runcState(stateDir(), id)?.status).toBe('running');

    // stdout and stderr apart, in order.
    await until('both lines logged', async () => (await rt.logs(id)).includes('oops'));
    const logs = await ct('logs', id);
    expect(logs.stdout).toBe('hello\n');
    expect(logs.stderr).toBe('oops\n');
    expect((await ct('logs', id, '--timestamps', '--stream', 'stderr')).stderr).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z oops\n$/);

    const stopped = await ct('stop', id);
    expect(stopped.stdout.trim()).toBe(`${id}: stopped (exit 3)`);
    expect(runcState(stateDir(), id)).toBeUndefined();
    ps = (await ct('ps')).stdout;
    expect(ps).toMatch(new RegExp(`${id}\\s+app\\d+\\s+stopped \\(held\\)\\s+none\\s+0\\s+3\\s+-`));
    expect((await ct('logs', id)).stdout).toBe('hello\ngot-term\n');
    // --tail N counts lines, as docker logs does (stdout and stderr together); with k/m, bytes.
    expect(await ct('logs', id, '--tail', '1')).toMatchObject({ stdout: 'got-term\n', stderr: '' });
    // (hello and oops are written at once to two streams: which is older is the loggers' race.)
    const two = await ct('logs', id, '--tail', '2');
    const lines = `${two.stdout}${two.stderr}`.split('\n').filter(Boolean);
    expect([lines.length, lines.includes('got-term'), lines.some((l) => l === 'hello' || l === 'oops')]).toEqual([2, true, true]);
    expect(await ct('logs', id, '--tail', '3')).toMatchObject({ stdout: 'hello\ngot-term\n', stderr: 'oops\n' });
    expect((await ct('logs', id, '--tail', '0')).stdout).toBe('');
    expect((await ct('logs', id, '--tail', '1k')).stdout).toBe('hello\ngot-term\n');
    // The stream is chosen before the lines are counted; -f after a tail of none follows from the end.
    expect(await ct('logs', id, '--stream', 'stderr', '--tail', '1')).toMatchObject({ stdout: '', stderr: 'oops\n' });
    expect(await ct('logs', id, '-f', '--tail', '0')).toMatchObject({ stdout: '', stderr: '' });
    expect(await ct('logs', id, '-f', '--tail', '1')).toMatchObject({ stdout: 'got-term\n', stderr: '' });

    await ct('start', id);
    expect(runcState(stateDir(), id)?.status).toBe('running');
    const killed = await ct('kill', id, '-s', 'KILL');
    expect(killed.stdout.trim()).toBe(`${id}: stopped (exit 137)`);
    const json = JSON.parse((await ct('ps', '--json')).stdout) as { id: string; state: string; exitCode: number; held: boolean }[];
    expect(json.find((c) => c.id === id)).toMatchObject({ state: 'stopped', exitCode: 137, held: true });

    await ct('rm', id);
    expect((await ct('ps')).stdout).not.toContain(id);
    const r = await runCt(['host', 'stop', id, '--state-dir', stateDir()]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/CONTAINER_NOT_FOUND/);
  }, 60_000);

  it('refuses a state directory another user may write, creating and removing nothing in it', async () => {
    const open = mkdtempSync(join(tmpdir(), 'ct-host-open-'));
    chmodSync(open, 0o777);
    for (const args of [['ps'], ['rm', 'anything']]) {
      const r = await runCt(['host', ...args, '--state-dir', open]);
      expect([r.code, r.stderr]).toEqual([1, expect.stringMatching(/^error\[USAGE\]: the state directory .* is writable by everyone/m)]);
    }
    expect(readdirSync(open)).toEqual([]);
  });

  it('logs -f prints lines as they come and ends when the container stops', async () => {
    const id = await create(['/bin/sh', '-c', 'for i in 1 2 3 4 5; do echo tick $i; sleep 0.3; done; echo bye >&2']);
    const r = await ct('logs', id, '-f');
    expect(r.stdout).toBe('tick 1\ntick 2\ntick 3\ntick 4\ntick 5\n');
    expect(r.stderr).toBe('bye\n');
  }, 30_000);
});

describe('ct host start without an agent, for a bundle with monitoring rules', () => {
  it('refuses a container whose policy requires monitoring (only an agent watches); starts another one with a warning', async () => {
    const made: Record<string, string> = {};
    for (const required of ['true', 'false']) {
      const id = `lcm-${process.pid}-${required}`;
      const plan = await buildRuntimePlan({ id, rootfs, app: { name: id, imageDigest: DIGEST }, runtime: { command: ['/bin/sh', '-c', 'sleep 30'] }, grants: { seccomp: 'required' }, cgroupsPath: `/cerro-torre/${id}` }, facts);
      plan.config.annotations = { ...plan.config.annotations, [MONITOR_ANNOTATION]: 'version: 1\nrules:\n  - name: x\n    kind: module-load\n', [MONITOR_REQUIRED_ANNOTATION]: required };
      await rt.create(id, plan.config, { appName: id, imageDigest: DIGEST });
      made[required] = id;
    }
    const strict = await runCt(['host', 'start', made.true, '--state-dir', stateDir()]);
    expect(strict.code).not.toBe(0);
    expect(strict.stderr).toContain('HOST_CANNOT_ENFORCE');
    expect(strict.stderr).toContain('monitoring is required and only a running agent (ct host run) watches containers');
    expect((await rt.state(made.true)).status).toBe('created');
    // Running (started by an agent): a restart is refused before it stops anything.
    const running = await rt.start(made.true);
    const restart = await runCt(['host', 'restart', made.true, '--state-dir', stateDir()]);
    expect(restart.code).not.toBe(0);
    expect(restart.stderr).toContain('HOST_CANNOT_ENFORCE');
    expect(await rt.state(made.true)).toMatchObject({ status: 'running', pid: running.pid });
    const lenient = await ct('start', made.false);
    expect(lenient.stderr).toMatch(new RegExp(`warning: ${made.false}: started without its monitor \\(no agent runs\\)`));
    expect((await rt.state(made.false)).status).toBe('running');
    await ct('rm', '-f', made.false).catch(() => rt.delete(made.false, { force: true }));
    await rt.delete(made.true, { force: true });
  });
});

describe('restart policy', () => {
  it('on-failure restarts a failing app with growing delays, counting restarts and keeping the exit code; a held one is left alone', async () => {
    const id = await create(['/bin/sh', '-c', 'echo run; exit 3'], 'on-failure');
    await rt.wait(id);
    const restartedAt: number[] = [];
    await until('three restarts', async () => {
      if ((await runner.applyRestartPolicy()).includes(id)) restartedAt.push(Date.now());
      await rt.state(id);
      return restartedAt.length >= 3;
    }, 20_000);
    const inv = (await runner.inventory()).find((c) => c.id === id)!;
    expect(inv.restarts).toBe(3);
    expect(inv.lastExitCode).toBe(3);
    // 0.5 s, 1 s, 2 s after each exit: the gaps grow.
    expect(restartedAt[2] - restartedAt[1]).toBeGreaterThan(restartedAt[1] - restartedAt[0]);
    expect(restartedAt[2] - restartedAt[1]).toBeGreaterThanOrEqual(1500);
    expect((await rt.logs(id)).split('\n').filter((l) => l === 'run').length).toBeGreaterThanOrEqual(3);
    // An operator's stop holds it.
    await runner.action(id, { action: 'stop' });
    await new Promise((r) => setTimeout(r, 4500));
    expect(await runner.applyRestartPolicy()).toEqual([]);
  }, 40_000);

  it('on-failure leaves exit 0 alone; always restarts it; never restarts nothing', async () => {
    const ok = await create(['/bin/sh', '-c', 'exit 0'], 'on-failure');
    const always = await create(['/bin/sh', '-c', 'exit 0'], 'always');
    const never = await create(['/bin/sh', '-c', 'exit 1'], 'never');
    for (const id of [ok, always, never]) await rt.wait(id);
    await new Promise((r) => setTimeout(r, 700));
    const restarted = await runner.applyRestartPolicy();
    expect(restarted).toContain(always);
    expect(restarted).not.toContain(ok);
    expect(restarted).not.toContain(never);
    expect((await runner.inventory()).find((c) => c.id === always)).toMatchObject({ restarts: 1, lastExitCode: 0 });
  }, 30_000);
});
