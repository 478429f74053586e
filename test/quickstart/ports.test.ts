/**
 * How `ct quickstart` waits for the children it starts on ports it chose, when something else got
 * to the port first. The flake this reproduces: a parallel test's server took the port quickstart
 * had picked for its registry, accepted the first readiness request and never answered it, then
 * closed its listener (keeping that connection); the registry bound the port a moment later and
 * ran fine, but the unbounded request held the poll until its 60 s deadline — "timed out waiting
 * for the registry to answer" with the registry alive and not one request in its access log.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Children } from '../../src/quickstart/children.js';
import { freePort, startListening } from '../../src/quickstart/ports.js';
import { layoutOf, registryAnswers, writeRegistryConfig, REGISTRY_NONCE_HEADER } from '../../src/quickstart/setup.js';

const REGISTRY_BIN = process.env.CT_DOCKER_REGISTRY_BIN ?? '/usr/bin/docker-registry';

let base: string;
let children: Children;
const cleanups: (() => Promise<unknown> | unknown)[] = [];

beforeAll(() => {
  if (!existsSync(REGISTRY_BIN)) throw new Error(`${REGISTRY_BIN} not found: install the Debian package docker-registry`);
  base = mkdtempSync(join(tmpdir(), 'ct-qs-ports-'));
});

afterEach(async () => {
  await children?.stopAll(2000);
  for (const c of cleanups.splice(0).reverse()) await c();
});

afterAll(() => {
  if (base) rmSync(base, { recursive: true, force: true });
});

/** A TCP server on `port` that accepts and never answers; `release()` closes its listener but keeps what it accepted. */
async function holdSilently(port: number): Promise<{ accepted: () => number; release: () => void }> {
  const held: Socket[] = [];
  const srv: Server = createServer((s) => void held.push(s));
  await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
  cleanups.push(() => held.forEach((s) => s.destroy()));
  // close() stops listening at once; its callback would wait for the held connections to end.
  return { accepted: () => held.length, release: () => void srv.close() };
}

/** Another registry on `port` as far as a bare `/v2/ answered 200` check can tell. */
async function fakeRegistry(port: number): Promise<HttpServer> {
  const srv = createHttpServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json', 'docker-distribution-api-version': 'registry/2.0' }).end('{}'));
  await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => { srv.close(() => r()); srv.closeAllConnections(); }));
  return srv;
}

/** A quickstart directory with its logs/, and the Children that log there. */
function layout(name: string) {
  const l = layoutOf(join(base, name));
  mkdirSync(l.logs, { recursive: true });
  children = new Children(l.logs);
  return l;
}

describe('Children.until', () => {
  it('gives up an attempt that never answers and tries again, within its deadline', async () => {
    layout('until');
    const child = children.start('sleeper', 'sleep', ['30']);
    let calls = 0;
    const aborted: boolean[] = [];
    const started = Date.now();
    const v = await children.until(child, 'an answer', (signal) => {
      calls++;
      if (calls === 1) return new Promise<undefined>(() => signal.addEventListener('abort', () => aborted.push(true)));
      return Promise.resolve('second');
    }, 5000, 300);
    expect({ v, calls, aborted }).toEqual({ v: 'second', calls: 2, aborted: [true] });
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('reports a child that exits while an attempt hangs as exited, at once', async () => {
    layout('until-exit');
    const child = children.start('quitter', 'sh', ['-c', 'sleep 0.3; echo gone; exit 3']);
    const started = Date.now();
    await expect(children.until(child, 'an answer', () => new Promise<undefined>(() => undefined), 20_000, 15_000))
      .rejects.toMatchObject({ code: 'RUNTIME_FAILED', details: { child: 'quitter', exitCode: 3 } });
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe('startListening with the quickstart registry', () => {
  /** The quickstart registry as quickstart starts it; `delay` seconds pass before it binds (a busy machine). */
  function registry(name: string, delay = 0) {
    const l = layout(name);
    const nonce = `nonce-${name}`;
    const starts: number[] = [];
    return {
      starts,
      run: (port: number, attemptMs?: number) => startListening(children, {
        what: 'the registry to answer', port, ms: 20_000, attemptMs,
        start: (p) => {
          starts.push(p);
          return children.start('registry', 'sh', ['-c', `sleep ${delay}; exec "$0" serve "$1"`, REGISTRY_BIN, writeRegistryConfig(l, p, nonce)]);
        },
        ready: (p, signal) => registryAnswers(p, nonce, signal),
      }),
      nonce,
    };
  }

  it('a server that took the port, accepted the first request and never answered it does not hold the wait (the flake)', async () => {
    const port = await freePort();
    const holder = await holdSilently(port);
    const r = registry('silent', 1.5);
    const running = r.run(port);
    // The first readiness request is accepted by the holder; then it lets go of the port (keeping
    // that connection open) and the registry, starting late, binds it.
    const until = Date.now() + 5000;
    while (holder.accepted() === 0 && Date.now() < until) await new Promise((res) => setTimeout(res, 20));
    expect(holder.accepted()).toBeGreaterThan(0);
    holder.release();
    const started = Date.now();
    const got = await running;
    expect({ port: got.port, starts: r.starts }).toEqual({ port, starts: [port] });
    expect(Date.now() - started).toBeLessThan(10_000);
  }, 30_000);

  it('an answer from another server on the port is not taken for the registry: it moves to a new port', async () => {
    const port = await freePort();
    await fakeRegistry(port);
    const r = registry('taken');
    const got = await r.run(port);
    expect(got.port).not.toBe(port);
    expect(r.starts).toEqual([port, got.port]);
    const res = await fetch(`http://127.0.0.1:${got.port}/v2/`);
    expect([res.status, res.headers.get(REGISTRY_NONCE_HEADER)]).toEqual([200, r.nonce]);
  }, 30_000);

  it('a child that fails for another reason is not started again', async () => {
    layout('broken');
    const starts: number[] = [];
    const port = await freePort();
    await expect(startListening(children, {
      what: 'the registry to answer', port, ms: 10_000,
      start: (p) => (starts.push(p), children.start('registry', 'sh', ['-c', 'echo "configuration error: no storage"; exit 1'])),
      ready: async () => undefined,
    })).rejects.toMatchObject({ code: 'RUNTIME_FAILED', details: { child: 'registry', exitCode: 1 } });
    expect(starts).toEqual([port]);
  });
});
