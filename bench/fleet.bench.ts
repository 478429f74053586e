// Cost as the fleet grows (issue 14, target 8): one deploy server (`ct serve`, its own process)
// with N simulated hosts connected over the real channel (bench/fleet-host.ts: real agents in a
// few processes, loopback only). A commit to the desired state deploys one app to every host;
// measured from the push to the deployment `succeeded` (the last host reported), median of a few
// commits. Baseline, same run: the same deploy to 1 host. Target: 200 hosts at most 3× one host.
// Also reported: the server's resident memory per connected host, and the curve at 1, 50, 100 and
// 200 hosts (the time each host beyond the first adds).
//
// Where the simulated hosts keep their state. Each agent saves the generation it accepts durably
// (write + fdatasync, host/agent/generation-record.ts) before acting on an assignment. A real
// fleet has one disk per host; here the 200 agents share one disk, which serialises their 200
// fdatasyncs (34–37 ms of wall time per redeploy on the development machine, a floor a real fleet
// does not have). The target's row keeps the agents' state directories on a tmpfs (/dev/shm, when
// present): every agent still calls fdatasync exactly as it does on a host, which a tmpfs answers
// at once, like a host with a disk of its own. A second row, informative, runs the same
// measurement with the state on the disk, as before (CT_BENCH_FLEET_STATE=tmpfs or disk: one only).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { cpuMsOf, type BenchResult } from './harness.js';
import { loopFixture, until, WEBHOOK_SECRET, type LoopFixture } from '../test/e2e/fixture.js';
import { freePort } from '../test/support/registry.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ADMIN = 'ctk_bench-fleet-admin-key-0123456789abcdef';
const HOSTS = Number(process.env.CT_BENCH_FLEET_HOSTS ?? 200);
/**
 * Simulated agents per process: the machine's cores share them, one process per core. Each agent
 * keeps its own channel, keys, state directory and durable save; what a process adds is paid once
 * per process (V8 compiling the agent's code, its collector's threads, an event loop), which a
 * real host pays once, at its start, on its own CPU. With 50 agents in each of 4 processes on
 * this 2-core machine those per-process costs were ~40 % of the simulated hosts' CPU per redeploy
 * (63–70 ms against 42–48 ms in 2 processes, same sitting; docs/performance.md "Round six").
 */
const PER_PROCESS = Math.max(1, Math.floor(Number(process.env.CT_BENCH_FLEET_PER_PROCESS ?? Math.ceil(HOSTS / availableParallelism()))) || 1);
const COMMITS = Number(process.env.CT_BENCH_FLEET_COMMITS ?? 5);
/**
 * Redeploys after the first and before those measured: a server runs for days, and its first
 * redeploys also pay V8 compiling their code. After 3 the server's compiler threads still took
 * 14–17 ms of CPU per 200-host redeploy (optimising ~40 functions a second), after 15 about 7 ms.
 */
const WARMUP = Number(process.env.CT_BENCH_FLEET_WARMUP ?? 15);
/**
 * Fleet sizes between 1 and HOSTS measured too, for the curve of how a deploy's time grows with the
 * fleet (the target's row only; CT_BENCH_FLEET_CURVE="" for none).
 */
const CURVE = (process.env.CT_BENCH_FLEET_CURVE ?? '50,100').split(',').map(Number).filter((n) => Number.isInteger(n) && n > 1 && n < HOSTS);

/** CT_BENCH_SERVER_ARGS / CT_BENCH_HOST_ARGS: extra node flags for the server or the simulated hosts' processes (e.g. --cpu-prof --cpu-prof-dir=DIR). */
const nodeArgs = (name: string) => process.env[name]?.split(' ').filter(Boolean) ?? [];
const rssKb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);

/** Median wall time per redeploy, and CPU time per redeploy of the server and of the simulated hosts' processes. */
interface Fleet { deployMs: number; firstMs: number; rssKb: number; serverCpuMs: number; hostsCpuMs: number }

async function fleet(fx: LoopFixture, hosts: number, reference: string, stateRoot: string): Promise<Fleet> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  // The server's own state (SQLite, bundles) stays on the disk in both rows.
  const name = `${hosts}-${randomUUID().slice(0, 8)}`;
  const dataDir = join(fx.dir, `server-${name}`);
  writeFileSync(join(fx.dir, `server-${name}.yaml`), YAML.stringify({
    host: '127.0.0.1', dataDir, policies: fx.policiesDir, trustStore: fx.trustStorePath,
    registries: { allow: [fx.registry.host], allowedAddresses: ['127.0.0.1'], insecure: [fx.registry.host] },
    github: { apiUrl: fx.github.url, token: 'ghs_servertoken', webhookSecrets: [WEBHOOK_SECRET], allowedAddresses: ['127.0.0.1'] },
    desiredState: { repo: fx.desiredRepo, branch: 'main', path: 'deploy', pollSeconds: 3600 },
  }));
  const children: ChildProcess[] = [];
  let stopEvents: AbortController | undefined;
  /** Final deployment states, in order, from `GET /api/v1/events`. */
  const deploymentEvents = async (base: string) => {
    stopEvents = new AbortController();
    const res = await fetch(`${base}/api/v1/events`, { headers: { authorization: `Bearer ${ADMIN}` }, signal: stopEvents.signal });
    const queue: { status: string }[] = [];
    const waiting: ((d: { status: string }) => void)[] = [];
    void (async () => {
      let buf = '';
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buf += Buffer.from(chunk).toString('utf8');
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const m = /^event: deployment\ndata: (.*)$/m.exec(block);
            const d = m ? (JSON.parse(m[1]) as { status: string }) : undefined;
            if (!d || ['queued', 'verifying', 'dispatching'].includes(d.status)) continue;
            const w = waiting.shift();
            if (w) w(d);
            else queue.push(d);
          }
        }
      } catch {
        // aborted at the end
      }
    })();
    return { next: () => new Promise<{ status: string }>((resolve) => (queue.length ? resolve(queue.shift()!) : waiting.push(resolve))) };
  };
  const server = spawn(process.execPath, [...nodeArgs('CT_BENCH_SERVER_ARGS'), join(repoRoot, 'bin', 'ct.js'), 'serve'], {
    env: { ...process.env, CT_CONFIG: join(fx.dir, `server-${name}.yaml`), PORT: String(port), CT_ADMIN_API_KEY: ADMIN, LOG_LEVEL: 'silent' }, stdio: 'ignore',
  });
  children.push(server);
  try {
    await until('server healthy', async () => (await fetch(`${url}/healthz`).catch(() => undefined))?.ok, 30_000);
    const api = (path: string, body?: unknown) => fetch(`${url}${path}`, { method: body ? 'POST' : 'GET', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: body ? JSON.stringify(body) : undefined }).then((r) => r.json() as Promise<Record<string, unknown>>);
    const tokens: { name: string; token: string }[] = [];
    for (let i = 0; i < hosts; i++) tokens.push({ name: `sim-${i}`, token: String((await api('/api/v1/hosts/tokens', { labels: { env: 'production' } })).token) });
    for (let i = 0; i < hosts; i += PER_PROCESS) {
      const child = spawn(process.execPath, [...nodeArgs('CT_BENCH_HOST_ARGS'), join(repoRoot, 'build', 'bench', 'fleet-host.js'), url, join(stateRoot, `fleet-${name}`), JSON.stringify(tokens.slice(i, i + PER_PROCESS))], { stdio: ['ignore', 'pipe', 'inherit'] });
      children.push(child);
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
        child.on('exit', (c) => reject(new Error(`fleet process exited ${c}`)));
      });
    }
    const events = await deploymentEvents(url);
    const times: number[] = [];
    let firstMs = 0;
    let serverCpu = 0;
    let hostsCpu = 0;
    let windowStart = 0n;
    const hostPids = children.slice(1).map((c) => c.pid!);
    for (let c = 0; c < 1 + WARMUP + COMMITS; c++) {
      const sha = fx.commit({ hello: reference }, `fleet ${hosts} ${c}`);
      const finalEvent = events.next();
      const body = JSON.stringify({ ref: 'refs/heads/main', after: sha, repository: { full_name: 'acme/desired' } });
      const t0 = performance.now();
      const hrStart = process.hrtime.bigint() / 1000n;
      const cpu0 = [cpuMsOf(server.pid!), hostPids.reduce((n, p) => n + cpuMsOf(p), 0)];
      await fetch(`${url}/webhooks/github`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': `sha256=${createHmac('sha256', WEBHOOK_SECRET).update(body).digest('hex')}` } });
      // The server-sent events say when the deployment reached its final state (polling the API
      // would load the server being measured).
      const done = await finalEvent;
      if (done.status !== 'succeeded') throw new Error(`deploy to ${hosts} hosts ended ${done.status}`);
      // The first one also fetched and verified the bundle, and every host downloaded it.
      if (c > WARMUP) {
        if (c === WARMUP + 1) windowStart = hrStart;
        times.push(performance.now() - t0);
        serverCpu += cpuMsOf(server.pid!) - cpu0[0];
        hostsCpu += hostPids.reduce((n, p) => n + cpuMsOf(p), 0) - cpu0[1];
      } else if (c === 0) firstMs = performance.now() - t0;
    }
    // CT_BENCH_FLEET_WINDOW: where to print the redeploys' window on the monotonic clock (µs, the
    // clock of --cpu-prof's timestamps), to read a profile of the redeploys alone.
    if (process.env.CT_BENCH_FLEET_WINDOW) appendFileSync(process.env.CT_BENCH_FLEET_WINDOW, `${hosts} ${stateRoot} ${windowStart} ${process.hrtime.bigint() / 1000n}\n`);
    times.sort((a, b) => a - b);
    return { deployMs: times[Math.floor(times.length / 2)], firstMs, rssKb: rssKb(server.pid!), serverCpuMs: serverCpu / COMMITS, hostsCpuMs: hostsCpu / COMMITS };
  } finally {
    stopEvents?.abort();
    for (const ch of children.slice(1)) ch.kill('SIGTERM');
    // SIGTERM: the server closes cleanly (and writes a CPU profile when NODE_OPTIONS asks for one).
    if (server.exitCode === null && server.signalCode === null) {
      const exited = new Promise((r) => server.once('exit', r));
      server.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      server.kill('SIGKILL');
    }
  }
}

/** Whether `dir` is on a tmpfs (statfs type TMPFS_MAGIC): the "disk" rows say so instead of claiming a disk. */
function onTmpfs(dir: string): boolean {
  return statfsSync(dir).type === 0x01021994;
}

function sharedMemoryDir(): string | undefined {
  if (!existsSync('/dev/shm')) return undefined;
  try {
    return mkdtempSync('/dev/shm/ct-bench-fleet-');
  } catch {
    return undefined;
  }
}

export async function run(): Promise<BenchResult[]> {
  const fx = await loopFixture();
  try {
    const reference = await fx.refs.good();
    // Alternating host selectors make every commit a change while the image stays the same.
    let flip = true;
    const commit = fx.commit.bind(fx);
    fx.commit = (_apps, message) => {
      flip = !flip;
      const work = join(fx.dir, 'work');
      writeFileSync(join(work, 'deploy', 'state.yaml'), `environments:\n  production:\n    apps:\n      hello:\n        bundle: ${reference}\n        hosts: ${flip ? '{ env: production }' : '{}'}\n`);
      execFileSync('git', ['commit', '-qam', message], { cwd: work, env: { ...process.env, GIT_AUTHOR_NAME: 'b', GIT_AUTHOR_EMAIL: 'b@e', GIT_COMMITTER_NAME: 'b', GIT_COMMITTER_EMAIL: 'b@e' } });
      execFileSync('git', ['push', '-q', 'origin', 'HEAD:main'], { cwd: work });
      return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: work, encoding: 'utf8' }).trim();
    };
    commit({ hello: reference }, 'initial');
    const which = process.env.CT_BENCH_FLEET_STATE;
    const results: BenchResult[] = [];
    /** Deploy time and server memory at each size, and what each host beyond the first adds. */
    const curveNote = (points: [number, Fleet][]) => {
      const [[, one], [n, many]] = [points[0], points[points.length - 1]];
      return `; curve: ${points.map(([h, f]) => `${h} host${h === 1 ? '' : 's'} ${f.deployMs.toFixed(1)} ms`).join(', ')}; each host beyond the first adds ≈ ${((many.deployMs - one.deployMs) / (n - 1)).toFixed(3)} ms`;
    };
    const row = (one: Fleet, many: Fleet, where: string, target?: { max: number }, curve = ''): BenchResult => ({
      name: `deploy to ${HOSTS} simulated hosts over the real channel, their state ${where}: commit → last host reported`,
      value: many.deployMs, baseline: one.deployMs, unit: 'ms', better: 'lower', ...(target ? { target } : {}),
      note: `baseline: the same deploy to 1 host, its state ${where}; median of ${COMMITS} redeploys after ${WARMUP} unmeasured; ${Math.ceil(HOSTS / PER_PROCESS)} simulated-host processes; first deploy (registry fetch, verification, ${HOSTS} downloads) ${many.firstMs.toFixed(0)} ms vs ${one.firstMs.toFixed(0)} ms; server RSS per connected host ≈ ${((many.rssKb - one.rssKb) / (HOSTS - 1)).toFixed(0)} KiB; CPU per redeploy: server ${many.serverCpuMs.toFixed(0)} ms vs ${one.serverCpuMs.toFixed(0)} ms, simulated hosts' processes ${many.hostsCpuMs.toFixed(0)} ms vs ${one.hostsCpuMs.toFixed(0)} ms${curve}`,
    });
    if (which !== 'disk') {
      // The target's row: each agent's fdatasync as on a host with its own disk (see the top).
      // The agents' state there holds the downloaded bundle (~1 MiB each): ~200 MiB of memory for
      // the run, removed at its end. A machine without a writable /dev/shm runs this row on the disk.
      const shm = sharedMemoryDir();
      try {
        const root = shm ?? fx.dir;
        const one = await fleet(fx, 1, reference, root);
        const points: [number, Fleet][] = [[1, one]];
        for (const n of CURVE) points.push([n, await fleet(fx, n, reference, root)]);
        const many = await fleet(fx, HOSTS, reference, root);
        points.push([HOSTS, many]);
        results.push(row(one, many, shm ? 'on a tmpfs (one disk per host)' : onTmpfs(root) ? 'in the temporary directory (a tmpfs; no /dev/shm here)' : 'on the disk (no /dev/shm here)', { max: 3 }, curveNote(points)));
      } finally {
        if (shm) rmSync(shm, { recursive: true, force: true });
      }
    }
    if (which !== 'tmpfs') {
      // Informative: the same with every agent's fdatasync on the one disk of this machine.
      const one = await fleet(fx, 1, reference, fx.dir);
      const many = await fleet(fx, HOSTS, reference, fx.dir);
      results.push(row(one, many, onTmpfs(fx.dir) ? 'in the temporary directory (a tmpfs on this machine, not a disk)' : 'on one shared disk', which === 'disk' ? { max: 3 } : undefined));
    }
    return results;
  } finally {
    await fx.cleanup();
  }
}
