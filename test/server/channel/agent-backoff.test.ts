/**
 * The agent's reconnect backoff is spread over ±50 % (host/agent/backoff.ts): hosts that lost
 * their server together (a restart) no longer retry at the same instants, all of them hitting the
 * server's per-address limit of pending handshakes together at every attempt.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAgent, type Agent } from '../../../host/agent/agent.js';
import { jittered } from '../../../host/agent/backoff.js';
import { FACTS, handServer, until } from './support.js';

describe('the agent\'s reconnect backoff', () => {
  const dirs: string[] = [];
  const closers: (() => Promise<unknown>)[] = [];
  let agent: Agent | undefined;
  afterAll(async () => {
    await agent?.stop();
    for (const c of closers) await c();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('is spread over ±50 % of the backoff', () => {
    expect(jittered(1000, () => 0)).toBe(500);
    expect(jittered(1000, () => 0.999999)).toBe(1500);
    const seen = new Set(Array.from({ length: 50 }, () => jittered(10_000)));
    expect(seen.size).toBeGreaterThan(40);
    for (const v of seen) expect(v >= 5_000 && v <= 15_000).toBe(true);
  });

  it('spaces an agent\'s attempts unevenly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ct-agent-backoff-'));
    dirs.push(dir);
    const real = await handServer(dir);
    closers.push(() => real.close());
    // A server that ends every connection at once: the agent backs off (200 ms, its cap) each time.
    const at: number[] = [];
    const sockets: Socket[] = [];
    const refusing = createServer((s) => {
      at.push(Date.now());
      sockets.push(s);
      s.destroy();
    });
    await new Promise<void>((r) => refusing.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((r) => refusing.close(r)));
    agent = await startAgent({
      serverUrl: `http://127.0.0.1:${(refusing.address() as AddressInfo).port}`, stateDir: dir, name: 'backoff-host', facts: async () => FACTS, maxBackoffMs: 200,
      runner: { run: async () => ({ state: 'refused', code: 'USAGE', message: 'not in this test' }) },
    });
    await until('ten attempts', () => at.length >= 10, 10_000);
    const gaps = at.slice(2, 10).map((t, i) => t - at[i + 1]);
    // Before: every gap was the backoff (200 ms) and a few ms of connecting.
    expect(Math.max(...gaps) - Math.min(...gaps)).toBeGreaterThan(50);
    for (const g of gaps) expect(g).toBeGreaterThanOrEqual(95);
  });
});
