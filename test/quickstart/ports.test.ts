/**
 * How `ct quickstart` waits for the children it starts on ports it chose, when something else got
 * to the port first. The flake this reproduces: a parallel test's server took the port quickstart
 * had picked for its registry, accepted the first readiness request and never answered it, then
 * closed its listener (keeping that connection); the registry bound the port a moment later and
 * ran fine, but the unbounded request held the poll until its 60 s deadline — "timed out waiting
 * for the registry to answer" with the registry alive and not one request in its access log.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, appendFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Children, type Child } from '../../src/quickstart/children.js';
import { freePort, startListening } from '../../src/quickstart/ports.js';
import { layoutOf, registryAnswers, serverAnswers, serverListening, writeRegistryConfig, REGISTRY_NONCE_HEADER } from '../../src/quickstart/setup.js';
import { ChildRecord, stopLeftovers } from '../../src/quickstart/leftovers.js';

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

describe('Children.until, each attempt', () => {
  /** A child as Children makes one, whose exit the test decides. */
  function fakeChild(): { child: Child; exit(code: number): void; thens: () => number } {
    let code: number | undefined;
    let resolveExit: (c: number) => void = () => undefined;
    const exited = new Promise<number | null>((r) => (resolveExit = r));
    let thens = 0;
    const then = exited.then.bind(exited);
    // Counts the reactions added to the child's exit (a wait must not add one per attempt).
    exited.then = ((...a: Parameters<typeof then>) => (thens++, then(...a))) as typeof exited.then;
    return {
      child: { name: 'fake', pid: -1, logFile: join(base, 'none.log'), logStart: 0, exited, exitCode: () => code },
      exit: (c) => { code = c; resolveExit(c); },
      thens: () => thens,
    };
  }

  it('a check that throws before returning a promise is a failed attempt, tried again', async () => {
    layout('sync-throw');
    const f = fakeChild();
    let calls = 0;
    const v = await children.until(f.child, 'an answer', () => {
      if (++calls === 1) throw new Error('thrown synchronously');
      return Promise.resolve('second');
    }, 5000, 300);
    expect({ v, calls }).toEqual({ v: 'second', calls: 2 });
  });

  it('adds one reaction to the child\'s exit for the whole wait, not one per attempt', async () => {
    layout('one-then');
    const f = fakeChild();
    let calls = 0;
    await children.until(f.child, 'an answer', async () => (++calls < 6 ? undefined : 'sixth'), 10_000, 300);
    expect({ calls, thens: f.thens() }).toEqual({ calls: 6, thens: 1 });
  }, 15_000);

  it('a check that passed while the child exited is not taken: the child is reported as exited', async () => {
    layout('passed-then-exited');
    const f = fakeChild();
    await expect(children.until(f.child, 'an answer', async () => (f.exit(7), 'answered'), 5000, 300))
      .rejects.toMatchObject({ code: 'RUNTIME_FAILED', details: { child: 'fake', exitCode: 7 } });
  });
});

describe('freePort', () => {
  it('never returns a port it was told to avoid (another child\'s kept port)', async () => {
    const offered = [4001, 4002, 4001, 4003];
    const port = await freePort([4001, 4002], async () => offered.shift()!);
    expect({ port, left: offered }).toEqual({ port: 4003, left: [] });
  });
});

describe('the deploy server\'s readiness', () => {
  /** A catch-all server answering 200 to everything, recording each request's Authorization header. */
  async function catchAll(port: number): Promise<{ requests: (string | undefined)[] }> {
    const requests: (string | undefined)[] = [];
    const srv = createHttpServer((req, res) => (requests.push(req.headers.authorization), res.writeHead(200, { 'content-type': 'application/json' }).end('{"hosts":[]}')));
    await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => { srv.close(() => r()); srv.closeAllConnections(); }));
    return { requests };
  }

  /** Stands in for ct serve: binds the port or says error[PORT_IN_USE] and exits, as ct serve does. */
  const fakeServe = (port: number) => children.start('server', process.execPath, ['-e', `
    const srv = require('node:http').createServer((q, s) => s.writeHead(q.url === '/healthz' ? 200 : 401).end());
    srv.on('error', (e) => { console.error('error[PORT_IN_USE]: ' + e.code); process.exit(6); });
    srv.listen(${port}, '127.0.0.1', () => console.log(${JSON.stringify(serverListening(port).trim())}));
    setTimeout(() => process.exit(0), 30000);`]);

  it('a catch-all server on the port is not taken for ct serve: the server moves, and nothing is sent to the squatter', async () => {
    layout('server-squatted');
    const port = await freePort();
    const squatter = await catchAll(port);
    const starts: number[] = [];
    const got = await startListening(children, {
      what: 'the deploy server to answer', port, ms: 20_000, avoid: () => [port],
      start: (p) => (starts.push(p), fakeServe(p)),
      ready: (p, signal, child) => serverAnswers(child, p, signal),
    });
    expect(got.port).not.toBe(port);
    expect(starts).toEqual([port, got.port]);
    expect(squatter.requests.filter((a) => a !== undefined)).toEqual([]);
  }, 30_000);

  it('the listening line of an earlier start in the same log does not count', async () => {
    const l = layout('server-earlier-line');
    const port = await freePort();
    await catchAll(port);
    writeFileSync(join(l.logs, 'server.log'), serverListening(port));
    const child = children.start('server', 'sleep', ['30']);
    expect(await serverAnswers(child, port, AbortSignal.timeout(3000))).toBeUndefined();
    appendFileSync(child.logFile, serverListening(port));
    expect(await serverAnswers(child, port, AbortSignal.timeout(3000))).toBe(true);
  });
});

describe('leftovers of an interrupted run', () => {
  it('stops the children an earlier run recorded and left running, and only those still the process recorded', async () => {
    const l = layout('leftovers');
    const file = join(l.dir, 'children.json');
    const record = new ChildRecord(file);
    const earlier = new Children(l.logs, (c, argv) => record.add(c, argv));
    cleanups.push(() => earlier.stopAll(1000));
    const host = earlier.start('host', 'sleep', ['31']);
    const other = earlier.start('registry', 'sleep', ['32']);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    // The registry's pid now belongs to some other program, as far as the record can tell.
    const rec = JSON.parse(readFileSync(file, 'utf8')) as { children: { argv: string[] }[] };
    rec.children[1].argv = ['sleep', '99'];
    writeFileSync(file, JSON.stringify(rec));
    const stopped = await stopLeftovers(file, 2000);
    expect(stopped.map((c) => [c.name, c.pid])).toEqual([['host', host.pid]]);
    expect(await host.exited).toBe(-1);
    expect(other.exitCode()).toBeUndefined();
    expect(existsSync(file)).toBe(false);
  });
});

describe('the registry configuration', () => {
  it('is written 0600 (it holds the nonce), also over an older file that was not', () => {
    const l = layout('registry-mode');
    mkdirSync(l.registry, { recursive: true });
    writeFileSync(join(l.registry, 'config.yml'), 'old', { mode: 0o644 });
    const file = writeRegistryConfig(l, 5000, 'n0nce');
    expect({ mode: statSync(file).mode & 0o777, nonce: readFileSync(file, 'utf8').includes('n0nce') }).toEqual({ mode: 0o600, nonce: true });
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
