// What the network benchmarks share: free loopback ports, "does the port answer HTTP yet", and a
// constant-rate HTTP load that counts what failed.
import { get } from 'node:http';
import { createServer } from 'node:net';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

export async function freePortPair(): Promise<[number, number]> {
  const a = await freePort();
  let b = await freePort();
  while (b === a) b = await freePort();
  return [a, b];
}

/** One GET on a new connection (like curl): the status, or the error's code. */
export function getOnce(port: number, timeoutMs = 2000): Promise<number | string> {
  return new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve('ERESPONSE'));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

/** Polls (every 2 ms) until GET / on the port answers 200. */
export async function httpAnswers(port: number, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if ((await getOnce(port, 500)) === 200) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`port ${port} did not answer within ${timeoutMs} ms`);
}

type LoadResult = { at: number; ok: boolean; what: number | string };

/** The load itself (in a worker thread: see constantLoad). */
function loadLoop(port: number, perSecond: number): () => Promise<LoadResult[]> {
  const results: Promise<LoadResult>[] = [];
  const t0 = performance.now();
  let sent = 0;
  // A timer per millisecond-ish tick catches up with the schedule, so a slow event loop does not lower the rate.
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - t0) / 1000) * perSecond);
    for (; sent < due; sent++) {
      const at = performance.now();
      // Failed means refused, reset or unanswered for 10 s, not slow: on a busy machine a SYN the
      // listener's backlog dropped is retried by the kernel after 1 and 3 s, and then answered.
      results.push(getOnce(port, 10_000).then((what) => ({ at, ok: what === 200, what })));
    }
  }, 2);
  return () => {
    clearInterval(timer);
    return Promise.all(results);
  };
}

if (!isMainThread && (workerData as { constantLoad?: { port: number; perSecond: number } } | null)?.constantLoad) {
  const { port, perSecond } = (workerData as { constantLoad: { port: number; perSecond: number } }).constantLoad;
  const stop = loadLoop(port, perSecond);
  parentPort!.once('message', () => void stop().then((r) => parentPort!.postMessage(r)));
}

/**
 * A constant request rate on 127.0.0.1:port (one new connection per request), started now; `stop`
 * waits for the answers and returns each request's start time and outcome. It runs in a worker
 * thread, like a client in another process: the benchmarked code (verification, unpacking) blocking
 * the main event loop must not make requests time out that the server answered in time.
 */
export function constantLoad(port: number, perSecond: number): { stop(): Promise<LoadResult[]> } {
  const worker = new Worker(new URL(import.meta.url), { workerData: { constantLoad: { port, perSecond } } });
  return {
    stop: () => new Promise((resolve, reject) => {
      worker.once('message', (r: LoadResult[]) => void worker.terminate().then(() => resolve(r)));
      worker.once('error', reject);
      worker.postMessage('stop');
    }),
  };
}

/**
 * The baseline's hand-driven container networking: a script doing `ip netns add` + `netavark
 * setup` + `runc run --detach` (start) and its reverse (stop), on a bundle directory holding
 * config.json and the netavark document (netavark.json).
 */
export async function handScripts(base: string, paths: { netavark: string; aardvark: string }): Promise<{ start(id: string, bundle: string): void; stop(id: string, bundle: string): void }> {
  const { mkdir, writeFile } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const { spawnSync } = await import('node:child_process');
  const nv = `"${paths.netavark}" --config "${join(base, 'netavark')}" --aardvark-binary "${paths.aardvark}"`;
  const runc = `runc --root "${join(base, 'runc-base')}"`;
  await mkdir(join(base, 'netavark'), { recursive: true });
  await writeFile(join(base, 'start.sh'), [
    '#!/bin/sh', 'set -e', 'ns="$1"; bundle="$2"',
    'ip netns add "$ns"',
    `${nv} setup "/run/netns/$ns" < "$bundle/netavark.json" > "$bundle/netavark.out" || { cat "$bundle/netavark.out" >&2; exit 1; }`,
    // The detached container inherits runc's stdio: nothing may hold a pipe of ours open.
    `${runc} run --detach --bundle "$bundle" "$ns" < /dev/null > /dev/null 2>&1`, '',
  ].join('\n'));
  await writeFile(join(base, 'stop.sh'), [
    '#!/bin/sh', 'ns="$1"; bundle="$2"',
    `${runc} delete --force "$ns" > /dev/null 2>&1`,
    `${nv} teardown "/run/netns/$ns" < "$bundle/netavark.json" > /dev/null 2>&1`,
    'ip netns delete "$ns"', '',
  ].join('\n'));
  const sh = (script: string, id: string, bundle: string) => {
    const r = spawnSync('/bin/sh', [join(base, script), id, bundle], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    if (r.status !== 0 && script === 'start.sh') throw new Error(`baseline ${script} exited ${r.status}: ${r.stderr.slice(-500)}`);
  };
  return { start: (id, bundle) => sh('start.sh', id, bundle), stop: (id, bundle) => sh('stop.sh', id, bundle) };
}

/** A bundle directory for handScripts: the config on the netns /run/netns/<id>, the netavark document publishing `port`. */
export async function handBundle(
  base: string,
  config: import('../host/enforce/types.js').OciConfig,
  network: import('../host/network/netavark.js').BridgeNetwork,
  id: string,
  port: number,
): Promise<string> {
  const { mkdir, writeFile } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const { netavarkDocument } = await import('../host/network/netavark.js');
  const bundle = join(base, id);
  await mkdir(bundle);
  const cfg = structuredClone(config);
  cfg.linux.namespaces = cfg.linux.namespaces.map((ns) => (ns.type === 'network' ? { type: 'network', path: `/run/netns/${id}` } : ns));
  await writeFile(join(bundle, 'config.json'), JSON.stringify(cfg));
  const address = `${network.gateway.slice(0, -2)}.2`;
  await writeFile(join(bundle, 'netavark.json'), netavarkDocument({ containerId: id, app: 'web', address, network, egress: 'any', ports: [{ host: port, container: 8080, address: '127.0.0.1', protocol: 'tcp' }] }));
  return bundle;
}
