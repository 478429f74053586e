// What the network benchmarks share: free loopback ports, "does the port answer HTTP yet", and a
// constant-rate HTTP load that counts what failed.
import { get } from 'node:http';
import { createServer } from 'node:net';

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

/**
 * A constant request rate on 127.0.0.1:port (one new connection per request), started now; `stop`
 * waits for the answers and returns each request's start time and outcome.
 */
export function constantLoad(port: number, perSecond: number): { stop(): Promise<{ at: number; ok: boolean; what: number | string }[]> } {
  const results: Promise<{ at: number; ok: boolean; what: number | string }>[] = [];
  const t0 = performance.now();
  let sent = 0;
  // A timer per millisecond-ish tick catches up with the schedule, so a slow event loop does not lower the rate.
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - t0) / 1000) * perSecond);
    for (; sent < due; sent++) {
      const at = performance.now();
      results.push(getOnce(port).then((what) => ({ at, ok: what === 200, what })));
    }
  }, 2);
  return {
    async stop() {
      clearInterval(timer);
      return Promise.all(results);
    },
  };
}
