// Host runtime: starting a container from an unpacked rootfs through our runtime (OCI config from
// grants and profiles, SQLite state, detached supervisor, wait for the exit code) against `runc run`
// alone on the same config. Needs root, runc and /bin/busybox (Debian busybox-static), as CI has.
import { spawnSync } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { timeMs, type BenchResult } from './harness.js';
import { buildRuntimePlan } from '../host/enforce/index.js';
import { collectFacts } from '../host/facts.js';
import { RuncRuntime } from '../host/runtime/index.js';

export async function run(): Promise<BenchResult[]> {
  const base = await mkdtemp(join(tmpdir(), 'ct-bench-host-'));
  try {
    const rootfs = join(base, 'rootfs');
    await mkdir(join(rootfs, 'bin'), { recursive: true });
    await mkdir(join(rootfs, 'tmp'));
    await chmod(join(rootfs, 'tmp'), 0o1777);
    await copyFile('/bin/busybox', join(rootfs, 'bin', 'busybox'));
    await symlink('busybox', join(rootfs, 'bin', 'true'));

    const facts = await collectFacts();
    const rt = await RuncRuntime.open({ stateDir: join(base, 'state'), unifiedCgroupMount: facts.cgroup.unifiedMount });
    let n = 0;
    const app = { name: 'bench', imageDigest: `sha256:${'ab'.repeat(32)}` };

    // Ours: plan (RuntimeDefault, AppArmor lint) + create + start under the supervisor + exit code.
    const ours = await timeMs(async () => {
      const id = `bench-ours-${++n}`;
      const plan = await buildRuntimePlan({ id, rootfs, app, runtime: { command: ['/bin/true'] }, grants: { seccomp: 'required' }, cgroupsPath: `/cerro-torre/${id}` }, facts);
      await rt.run(id, plan.config);
      const done = await rt.wait(id, 20000);
      if (done.exitCode !== 0) throw new Error(`container exited ${done.exitCode}`);
      await rt.delete(id, { purge: true });
    }, 7);

    // Baseline: `runc run` on a bundle with the same config, written once.
    const plan = await buildRuntimePlan({ id: 'bench-runc', rootfs, app, runtime: { command: ['/bin/true'] }, grants: { seccomp: 'required' } }, facts);
    const bundle = join(base, 'bundle');
    await mkdir(bundle);
    await writeFile(join(bundle, 'config.json'), JSON.stringify(plan.config));
    const runcRoot = join(base, 'runc-root');
    const baseline = await timeMs(() => {
      const r = spawnSync('runc', ['--root', runcRoot, 'run', '--bundle', bundle, `bench-runc-${++n}`], { stdio: 'ignore' });
      if (r.status !== 0) throw new Error(`runc run exited ${r.status}`);
    }, 7);
    rt.close();
    return [
      {
        name: 'container start to exit code (/bin/true, RuntimeDefault): runtime vs runc run alone',
        value: ours,
        baseline,
        unit: 'ms',
        better: 'lower',
        target: { max: 1.5 },
        note: 'median of 7; ours includes OCI config + AppArmor lint, SQLite, supervisor process',
      },
    ];
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}
