/**
 * The launcher (host/runtime/launcher.ts, #14 target 5): detached processes (container
 * supervisors) are started by a small helper process, not forked from the agent. What it starts is
 * what was asked (argv, working directory), in a session of its own; a launcher that dies is
 * replaced at the next start and does not take what it started with it; a binary that cannot be
 * started is an error, not a pid.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Launcher, launcher as shared } from '../../host/runtime/launcher.js';
import { buildRuntimePlan } from '../../host/enforce/index.js';
import { collectFacts } from '../../host/facts.js';
import { RuncRuntime } from '../../host/runtime/index.js';
import { DIGEST, makeRootfs, requireHostTools } from './support.js';
import { repoRoot } from '../support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'ct-launcher-'));
const started: number[] = [];
const launcher = new Launcher();
launcher.warm(); // as the agent's LocalRunner does

afterAll(() => {
  for (const pid of started) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  launcher.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Parent pid and session id of a process (/proc/<pid>/stat). */
function statOf(pid: number): { ppid: number; sid: number } {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(f[1]), sid: Number(f[3]) };
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('Launcher', () => {
  it('starts the process asked for, in its own session, from the launcher rather than from this process', async () => {
    const pid = (await launcher.spawnDetached('/bin/sleep', ['30'], dir))!;
    started.push(pid);
    expect(launcher.launched).toBe(1);
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean)).toEqual(['/bin/sleep', '30']);
    expect(readlinkSync(`/proc/${pid}/cwd`)).toBe(dir);
    const st = statOf(pid);
    expect(st.sid).toBe(pid);
    expect(st.ppid).not.toBe(process.pid);
    expect(statOf(st.ppid).ppid).toBe(process.pid); // the launcher is this process's child
  });

  it('refuses a binary that cannot be started (RUNTIME_FAILED), and goes on working', async () => {
    await expect(launcher.spawnDetached(join(dir, 'no-such-binary'), [], dir)).rejects.toMatchObject({ code: 'RUNTIME_FAILED' });
    const pid = (await launcher.spawnDetached('/bin/sleep', ['30'], dir))!;
    started.push(pid);
    expect(alive(pid)).toBe(true);
  });

  it('a launcher that died is replaced at the next start; what it started keeps running', async () => {
    const first = (await launcher.spawnDetached('/bin/sleep', ['30'], dir))!;
    started.push(first);
    const oldLauncher = statOf(first).ppid;
    launcher.stop();
    const before = launcher.launched;
    const second = (await launcher.spawnDetached('/bin/sleep', ['30'], dir))!;
    started.push(second);
    expect(launcher.launched).toBe(before + 1);
    expect(statOf(second).ppid).not.toBe(oldLauncher);
    expect(statOf(second).ppid).not.toBe(process.pid);
    expect(alive(first)).toBe(true);
  });

  it('a killed launcher (not by this process) is noticed and replaced; the supervisor it started keeps running', async () => {
    const first = (await launcher.spawnDetached('/bin/sleep', ['30'], dir))!;
    started.push(first);
    const old = statOf(first).ppid;
    process.kill(old, 'SIGKILL');
    for (let i = 0; i < 400 && alive(old); i++) await new Promise((r) => setTimeout(r, 5)); // reaped once its exit is seen
    const next = (await launcher.spawnDetached('/bin/sleep', ['30'], dir))!;
    started.push(next);
    expect(statOf(next).ppid).not.toBe(old);
    expect(alive(first)).toBe(true);
  });

  it('a container start goes through the launcher: the supervisor is not a child of the agent', async () => {
    requireHostTools();
    const facts = await collectFacts();
    const { base, rootfs } = await makeRootfs();
    const rt = await RuncRuntime.open({ stateDir: join(base, 'state'), unifiedCgroupMount: facts.cgroup.unifiedMount });
    const id = `launch-${process.pid}`;
    try {
      const plan = await buildRuntimePlan({ id, rootfs, app: { name: 'launch', imageDigest: DIGEST }, runtime: { command: ['/bin/sh', '-c', 'sleep 30'] }, grants: { seccomp: 'required' }, cgroupsPath: `/cerro-torre/${id}` }, facts);
      shared.warm();
      const before = shared.launched;
      const rec = await rt.run(id, plan.config);
      expect(rec.status).toBe('running');
      expect(shared.launched).toBe(before + 1);
      const sup = rt.store.get(id)!.supervisorPid!;
      expect(readFileSync(`/proc/${sup}/cmdline`, 'utf8').split('\0')[0]).toBe('/bin/sh');
      expect(statOf(sup).ppid).not.toBe(process.pid);
      expect(statOf(sup).sid).toBe(sup);
    } finally {
      await rt.delete(id, { force: true }).catch(() => undefined);
      rt.close();
      shared.stop();
      rmSync(base, { recursive: true, force: true });
    }
  });

  it('a start the launcher took and never answered: the container it did start is found, reported running, and removed by delete', async () => {
    requireHostTools();
    const facts = await collectFacts();
    const { base, rootfs } = await makeRootfs();
    const rt = await RuncRuntime.open({ stateDir: join(base, 'state'), unifiedCgroupMount: facts.cgroup.unifiedMount });
    const id = `launch-lost-${process.pid}`;
    const hidden = shared as unknown as { answerMs: number; child?: { send: (...a: unknown[]) => unknown } };
    const answerMs = hidden.answerMs;
    try {
      const plan = await buildRuntimePlan({ id, rootfs, app: { name: 'lost', imageDigest: DIGEST }, runtime: { command: ['/bin/sh', '-c', 'sleep 30'] }, grants: { seccomp: 'required' }, cgroupsPath: `/cerro-torre/${id}` }, facts);
      shared.warm();
      await shared.spawnDetached('/bin/true', [], dir); // the launcher is up
      // The launcher gets the request and starts the supervisor, but this thread is busy past the
      // launcher's answer bound (a starved agent): the launcher is killed before its answer is read.
      hidden.answerMs = 300;
      const child = hidden.child!;
      const send = child.send.bind(child);
      child.send = (...a: unknown[]) => {
        const r = send(...a);
        setImmediate(() => {
          const t = Date.now();
          while (Date.now() - t < 1000);
        });
        return r;
      };
      const rec = await rt.run(id, plan.config);
      // Not "nothing was started": the supervisor the lost request started runs the container.
      expect(rec.status).toBe('running');
      expect(alive(rec.pid!)).toBe(true);
      expect((await rt.state(id)).status).toBe('running');
      await rt.delete(id, { force: true });
      for (let i = 0; i < 200 && alive(rec.pid!); i++) await new Promise((r) => setTimeout(r, 10));
      expect(alive(rec.pid!)).toBe(false);
    } finally {
      hidden.answerMs = answerMs;
      await rt.delete(id, { force: true }).catch(() => undefined);
      rt.close();
      shared.stop();
      rmSync(base, { recursive: true, force: true });
    }
  });

  it('the launcher and the unpack thread, started ahead (as the agent does) and idle, keep no process alive', () => {
    // A `ct host run` that fails to enrol must exit: both are started by LocalRunner's constructor.
    const script = `import { launcher } from ${JSON.stringify(join(repoRoot, 'build/host/runtime/launcher.js'))};
import { unpackThread } from ${JSON.stringify(join(repoRoot, 'build/src/bundle/unpack-thread/index.js'))};
launcher.warm(); unpackThread.warm(); setTimeout(() => console.log('ended'), 300);`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(out.trim()).toBe('ended');
  });

  it('a launcher never warmed (a one-shot ct run) is not started: the process is spawned directly', async () => {
    const cold = new Launcher();
    const pid = (await cold.spawnDetached('/bin/sleep', ['30'], dir))!;
    started.push(pid);
    expect(cold.launched).toBe(0);
    expect(statOf(pid).ppid).toBe(process.pid);
    expect(statOf(pid).sid).toBe(pid);
  });

  it('a launcher that does not answer (stopped) is killed and the start fails; nothing is started later; the next start works', async () => {
    const slow = new Launcher(300);
    slow.warm();
    const first = (await slow.spawnDetached('/bin/sleep', ['30'], dir))!;
    started.push(first);
    const stuck = statOf(first).ppid;
    process.kill(stuck, 'SIGSTOP');
    const marker = join(dir, 'late');
    await expect(slow.spawnDetached('/bin/sh', ['-c', `touch ${marker}`], dir)).rejects.toMatchObject({ code: 'RUNTIME_FAILED' });
    for (let i = 0; i < 400 && alive(stuck); i++) await new Promise((r) => setTimeout(r, 5));
    expect(alive(stuck)).toBe(false);
    await new Promise((r) => setTimeout(r, 200));
    expect(existsSync(marker)).toBe(false);
    const next = (await slow.spawnDetached('/bin/sleep', ['30'], dir))!;
    started.push(next);
    expect(statOf(next).ppid).not.toBe(process.pid);
    slow.stop();
  });
});
