// Cost as the desired state grows (issue 14, target 7): a desired-state repository of N apps × 3
// environments (one file per app and environment, the layout docs/server.md recommends for large
// repositories) in which one commit changes one app. Measured: the server's CPU time (user +
// system of this process: the reconciler runs in process; git's own processes are not the
// server's CPU) and wall time of that reconcile, which must redeploy exactly the changed app.
// Baseline, same run: the same one-app change on a repository of 1 app × 3 environments.
// Target: at 1,000 apps, at most 3× the baseline CPU time. The curve at 1, 100, 1,000 and 5,000.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchResult } from './harness.js';
import { openDb } from '../server/store/db.js';
import { migrate } from '../server/store/migrations.js';
import { GitMirror } from '../server/gitops/git.js';
import { Reconciler } from '../server/gitops/reconcile.js';

const ENVS = ['development', 'staging', 'production'];
const SIZES = (process.env.CT_BENCH_RECONCILE_SIZES ?? '1,100,1000,5000').split(',').map(Number);
const RUNS = 7;
const gitEnv = { ...process.env, GIT_AUTHOR_NAME: 'b', GIT_AUTHOR_EMAIL: 'b@e', GIT_COMMITTER_NAME: 'b', GIT_COMMITTER_EMAIL: 'b@e' };
const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;
const appFile = (env: string, app: string, n: number) => `environments:\n  ${env}:\n    apps:\n      ${app}:\n        bundle: registry.example/acme/${app}@${digest(n)}\n        hosts: { env: ${env} }\n`;

interface Point { apps: number; cpuMs: number; wallMs: number }

async function measure(apps: number): Promise<Point> {
  const dir = mkdtempSync(join(tmpdir(), 'ct-bench-reconcile-'));
  try {
    const bare = join(dir, 'desired.git');
    const work = join(dir, 'work');
    execFileSync('git', ['init', '-q', '--bare', '-b', 'main', bare]);
    execFileSync('git', ['init', '-q', '-b', 'main', work]);
    const git = (args: string[]) => execFileSync('git', args, { cwd: work, env: gitEnv, encoding: 'utf8', maxBuffer: 64 << 20 }).trim();
    git(['remote', 'add', 'origin', bare]);
    for (const env of ENVS) {
      mkdirSync(join(work, 'deploy', env), { recursive: true });
      for (let i = 0; i < apps; i++) writeFileSync(join(work, 'deploy', env, `app-${i}.yaml`), appFile(env, `app-${i}`, 1));
    }
    git(['add', '-A']);
    git(['commit', '-qm', 'initial']);
    git(['push', '-q', 'origin', 'HEAD:main']);
    const db = await openDb({ sqlitePath: ':memory:' });
    await migrate(db);
    const mirror = new GitMirror(bare, join(dir, 'cache'));
    let deployed: string[] = [];
    const reconciler = new Reconciler(db, mirror, { branch: 'main', path: 'deploy', enqueueDeploy: async (a) => void deployed.push(`${a.environment}/${a.app}`) });
    await reconciler.reconcile('initial');
    const cpu: number[] = [];
    const wall: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const target = `app-${r % apps}`;
      writeFileSync(join(work, 'deploy', 'production', `${target}.yaml`), appFile('production', target, r + 2));
      git(['commit', '-qam', `change ${target}`]);
      git(['push', '-q', 'origin', 'HEAD:main']);
      deployed = [];
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      const out = await reconciler.reconcile(`run ${r}`);
      const dt = Number(process.hrtime.bigint() - t0) / 1e6;
      const dc = process.cpuUsage(c0);
      if (out.outcome !== 'applied' || deployed.length !== 1 || deployed[0] !== `production/${target}`) throw new Error(`reconcile of ${apps} apps redeployed ${JSON.stringify(deployed)} (${out.outcome})`);
      cpu.push((dc.user + dc.system) / 1000);
      wall.push(dt);
    }
    mirror.close();
    await db.close();
    const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
    return { apps, cpuMs: med(cpu), wallMs: med(wall) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(): Promise<BenchResult[]> {
  const base = await measure(1);
  const points: Point[] = [];
  for (const n of SIZES) points.push(n === 1 ? base : await measure(n));
  const curve = points.map((p) => `${p.apps} apps: ${p.cpuMs.toFixed(2)} ms CPU, ${p.wallMs.toFixed(1)} ms wall`).join('; ');
  const at = (n: number) => points.find((p) => p.apps === n) ?? points[points.length - 1];
  const k = at(1000);
  return [
    {
      name: `reconcile of a one-app change, ${k.apps} apps × 3 environments: server CPU time`,
      value: k.cpuMs, baseline: base.cpuMs, unit: 'ms', better: 'lower', target: { max: 3 },
      note: `baseline: the same change with 1 app × 3 environments; median of ${RUNS}; curve: ${curve}`,
    },
    {
      name: `reconcile of a one-app change, ${k.apps} apps × 3 environments: wall time`,
      value: k.wallMs, baseline: base.wallMs, unit: 'ms', better: 'lower',
      note: 'includes git fetch and merge-base (child processes)',
    },
  ];
}
