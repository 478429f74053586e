// Deploy server throughput with autocannon (issue 6). Baseline, measured in the same run: a
// minimal express 5 app answering one JSON route. Servers run in child processes so that the
// load generator (this process) and the server each get a core. The server's CPU time per request
// (/proc) is printed too: on a loaded machine it is steadier than the throughput ratio.
// Profiling: CT_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" CT_BENCH_KILL=TERM (the
// servers end with SIGTERM, so that node writes its profile).
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import YAML from 'yaml';
import { cpuMsOf, type BenchResult } from './harness.js';
import { loopFixture, until } from '../test/e2e/fixture.js';
import { freePort } from '../test/support/registry.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DURATION = Number(process.env.CT_BENCH_SECONDS ?? 5);
const ADMIN = 'ctk_bench-admin-key-0123456789abcdef0123';

const MINIMAL = `
import express from 'express';
const app = express();
app.get('/healthz', (_req, res) => res.json({ status: 'ok' }));
app.listen(Number(process.env.PORT), '127.0.0.1');
`;


/** Throughput and p99 at 50 connections, and the server's CPU time per request (µs). */
async function load(url: string, server: ChildProcess, opts: { method?: 'GET' | 'POST'; body?: string; headers?: Record<string, string> } = {}) {
  const cpu0 = cpuMsOf(server.pid!);
  const r = await autocannon({ url, connections: 50, duration: DURATION, method: opts.method ?? 'GET', body: opts.body, headers: opts.headers });
  const cpu = cpuMsOf(server.pid!) - cpu0;
  if (r.non2xx > 0 || r.errors > 0) throw new Error(`${url}: ${r.non2xx} non-2xx, ${r.errors} errors`);
  return { rps: r.requests.average, p99: r.latency.p99, cpuUsPerRequest: (cpu * 1000) / Math.max(1, r.requests.total) };
}

async function serve(args: string[], env: NodeJS.ProcessEnv, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...(process.env.CT_BENCH_NODE_ARGS?.split(' ') ?? []), ...args], { cwd: repoRoot, env: { ...process.env, ...env, PORT: String(port) }, stdio: 'ignore' });
  await until('server up', async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.ok, 30_000);
  return child;
}

export async function run(): Promise<BenchResult[]> {
  const fx = await loopFixture();
  const children: ChildProcess[] = [];
  try {
    const basePort = await freePort();
    // The minimal app resolves express from the repository's node_modules.
    writeFileSync(join(repoRoot, 'build', 'bench-minimal.mjs'), MINIMAL);
    const minimal = await serve([join(repoRoot, 'build', 'bench-minimal.mjs')], {}, basePort);
    children.push(minimal);
    const baseline = await load(`http://127.0.0.1:${basePort}/healthz`, minimal);

    const port = await freePort();
    // /api/v1/verify judges without a target host: a policy without host-dependent runtime rules.
    writeFileSync(join(fx.policiesDir, 'staging.policy.yaml'), YAML.stringify({
      apiVersion: 'cerro-torre.dev/v2', kind: 'Policy', name: 'staging', mode: 'strict', match: { environments: ['staging'] },
      signers: [{ role: 'builders' }], attestations: [{ predicateType: 'https://slsa.dev/provenance/v1' }], logQuorum: 2,
    }));
    writeFileSync(join(fx.dir, 'server.yaml'), YAML.stringify({
      host: '127.0.0.1', dataDir: join(fx.dir, 'server'), policies: fx.policiesDir, trustStore: fx.trustStorePath,
      registries: { allow: [fx.registry.host], allowedAddresses: ['127.0.0.1'], insecure: [fx.registry.host] },
    }));
    const server = await serve([join(repoRoot, 'bin', 'ct.js'), 'serve'], { CT_CONFIG: join(fx.dir, 'server.yaml'), CT_ADMIN_API_KEY: ADMIN, LOG_LEVEL: 'silent' }, port);
    children.push(server);
    const health = await load(`http://127.0.0.1:${port}/healthz`, server);

    const reference = await fx.refs.good();
    const verify = { method: 'POST' as const, body: JSON.stringify({ reference, environment: 'staging' }), headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' } };
    const first = await fetch(`http://127.0.0.1:${port}/api/v1/verify`, verify);
    const decision = (await first.json()) as { decision: string };
    if (decision.decision !== 'ALLOW') throw new Error(`verify bench bundle not allowed: ${JSON.stringify(decision)}`);
    const cached = await load(`http://127.0.0.1:${port}/api/v1/verify`, server, verify);
    const cpu = `server CPU per request: /api/v1/verify ${cached.cpuUsPerRequest.toFixed(0)} µs, /healthz ${health.cpuUsPerRequest.toFixed(0)} µs, minimal express ${baseline.cpuUsPerRequest.toFixed(0)} µs`;

    return [
      { name: '/healthz throughput vs minimal express 5', value: health.rps, baseline: baseline.rps, unit: 'req/s', better: 'higher', target: { min: 0.8 } },
      { name: '/api/v1/verify (cached bundle) throughput vs minimal express 5', value: cached.rps, baseline: baseline.rps, unit: 'req/s', better: 'higher', target: { min: 0.5 }, note: cpu },
      { name: '/api/v1/verify (cached) p99 latency, 50 connections', value: cached.p99, baseline: 20, unit: 'ms', better: 'lower', target: { max: 1 }, note: 'baseline = the 20 ms target' },
    ];
  } finally {
    for (const c of children) c.kill(process.env.CT_BENCH_KILL === 'TERM' ? 'SIGTERM' : 'SIGKILL');
    if (process.env.CT_BENCH_KILL === 'TERM') await new Promise((r) => setTimeout(r, 3000));
    await fx.cleanup();
  }
}
