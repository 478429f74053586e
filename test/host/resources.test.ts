/**
 * Issue 11, resources: `[runtime.resources]` and `[runtime.ulimits]` reach runc (cgroup limits and
 * OCI rlimits on this hybrid-cgroup host), a container allocating past its memory limit is killed
 * and reported OOM_KILLED, and a plain SIGKILL is not mistaken for one.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { buildRuntimePlan, type EnforceInput } from '../../host/enforce/index.js';
import { collectFacts, type HostFacts } from '../../host/facts.js';
import { RuncRuntime } from '../../host/runtime/index.js';
import { DIGEST, makeRootfs, requireHostTools } from './support.js';

let facts: HostFacts;
let base: string;
let rootfs: string;
let rt: RuncRuntime;
let seq = 0;

function input(command: string[], runtime: EnforceInput['runtime'] = {}, limits: NonNullable<EnforceInput['grants']['limits']> = {}): EnforceInput {
  const id = `res-${process.pid}-${++seq}`;
  return {
    id, rootfs, app: { name: 'res', imageDigest: DIGEST }, runtime: { command, ...runtime },
    grants: { seccomp: 'required', limits }, cgroupsPath: `/cerro-torre/${id}`,
  };
}

beforeAll(async () => {
  requireHostTools();
  facts = await collectFacts();
  ({ base, rootfs } = await makeRootfs(['dd', 'head']));
  rt = await RuncRuntime.open({ stateDir: `${base}/state`, unifiedCgroupMount: facts.cgroup.unifiedMount });
});

afterAll(async () => {
  for (const c of (await rt?.list()) ?? []) await rt.delete(c.id, { force: true }).catch(() => undefined);
  rt?.close();
  if (base) await rm(base, { recursive: true, force: true });
});

describe('resources', () => {
  it('kills a container that allocates past its memory limit and reports OOM_KILLED', async () => {
    // 64 MiB written to a tmpfs is charged to the container's memory cgroup (limit 16 MiB).
    const inp = input(['/bin/dd', 'if=/dev/zero', 'of=/tmp/fill', 'bs=1048576', 'count=60'], { resources: { memory: 16 * 1024 * 1024 } });
    const plan = await buildRuntimePlan(inp, facts);
    expect(plan.config.linux.resources?.memory).toEqual({ limit: 16 * 1024 * 1024, swap: 16 * 1024 * 1024 });
    await rt.run(inp.id, plan.config);
    const done = await rt.wait(inp.id, 20000);
    expect(done.exitCode).toBe(137);
    expect(done.exitReason).toBe('OOM_KILLED');
  }, 30000);

  it('does not report a container killed by SIGKILL as OOM', async () => {
    const inp = input(['/bin/sleep', '60'], { resources: { memory: 32 * 1024 * 1024 } });
    await rt.run(inp.id, (await buildRuntimePlan(inp, facts)).config);
    await rt.kill(inp.id, 'KILL');
    const done = await rt.wait(inp.id, 10000);
    expect(done.exitCode).toBe(137);
    expect(done.exitReason).toBeNull();
  }, 30000);

  it('applies memory, CPU and pids limits in the container\'s cgroup, and nofile as an rlimit', async () => {
    const inp = input(['/bin/sh', '-c', 'ulimit -n; ulimit -Hn; exec sleep 60'], {
      resources: { memory: 48 * 1024 * 1024, cpus: 0.5, pids: 64 }, ulimits: { nofile: { soft: 2048, hard: 4096 } },
    });
    await rt.run(inp.id, (await buildRuntimePlan(inp, facts)).config);
    // The memory, cpu and pids controllers are cgroup v1 on this host (hybrid mode).
    const cg = (ctl: string, file: string) => readFileSync(`/sys/fs/cgroup/${ctl}/cerro-torre/${inp.id}/${file}`, 'utf8').trim();
    expect([cg('memory', 'memory.limit_in_bytes'), cg('cpu', 'cpu.cfs_quota_us'), cg('pids', 'pids.max')]).toEqual([String(48 * 1024 * 1024), '50000', '64']);
    await rt.stop(inp.id, 1000);
    expect((await rt.logs(inp.id)).trim().split('\n')).toEqual(['2048', '4096']);
  }, 30000);

  it('falls back to the policy\'s limits when the bundle asks none, and never goes above them', async () => {
    const policy = { memoryBytes: 32 * 1024 * 1024, pids: 50, cpus: 1 };
    const silent = await buildRuntimePlan(input(['/bin/true']), facts).then((p) => p.config.linux.resources);
    expect(silent?.memory).toBeUndefined();
    const limited = (await buildRuntimePlan(input(['/bin/true'], {}, policy), facts)).config.linux.resources;
    expect(limited).toMatchObject({ memory: { limit: 32 * 1024 * 1024 }, pids: { limit: 50 }, cpu: { quota: 100000, period: 100000 } });
    const greedy = (await buildRuntimePlan(input(['/bin/true'], { resources: { memory: 1024 ** 3, pids: 1000 } }, policy), facts)).config.linux.resources;
    expect(greedy).toMatchObject({ memory: { limit: 32 * 1024 * 1024 }, pids: { limit: 50 } });
  });
});
