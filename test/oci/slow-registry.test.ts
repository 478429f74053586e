/**
 * A registry that answers, but too slowly to ever finish (docs/registry.md "Time bounds"): the
 * idle timeout restarts with every byte, so a registry dripping one byte at a time held a
 * `ct fetch --timeout 3000` for ever. Every answer body must keep a minimum average rate after
 * its grace, and a caller's overall deadline ends any request still running; an honest answer
 * that is slow but steady above the rate still arrives.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { RegistryClient, type ClientOptions } from '../../src/oci/client.js';
import { parseReference } from '../../src/oci/reference.js';
import { deadlineOf, SERVER_FETCH_DEADLINE } from '../../src/oci/fetch.js';

const closers: (() => void)[] = [];
afterEach(() => {
  while (closers.length) closers.pop()!();
});

const BLOB = Buffer.alloc(60 * 1024, 'x');
const DESC = { digest: `sha256:${createHash('sha256').update(BLOB).digest('hex')}`, size: BLOB.length };

/** A raw TCP server on 127.0.0.1 (its port): `handle` answers each socket; sockets and timers end with the test file. */
async function rawServer(handle: (s: Socket, timers: Set<NodeJS.Timeout>) => void): Promise<number> {
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const srv: Server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    handle(s, timers);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  closers.push(() => {
    // clearTimeout clears intervals too.
    for (const t of timers) clearTimeout(t);
    for (const s of sockets) s.destroy();
    srv.close();
  });
  return (srv.address() as { port: number }).port;
}

/**
 * Answers every GET with BLOB, `step` bytes every `everyMs`, framed by a Content-Length or
 * chunked (which the GET client hands to undici). Only 127.0.0.1.
 */
async function dripServer(step: number, everyMs: number, framing: 'length' | 'chunked'): Promise<number> {
  return rawServer((s, timers) => {
    s.once('data', () => {
      s.write(`HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n${framing === 'length' ? `Content-Length: ${BLOB.length}` : 'Transfer-Encoding: chunked'}\r\n\r\n`);
      let at = 0;
      const t = setInterval(() => {
        if (s.destroyed) return clearInterval(t);
        const piece = BLOB.subarray(at, at + step);
        at += piece.length;
        s.write(framing === 'length' ? piece : Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]));
        if (at >= BLOB.length) {
          clearInterval(t);
          if (framing === 'chunked') s.write('0\r\n\r\n');
        }
      }, everyMs);
      timers.add(t);
    });
  });
}

async function pull(port: number, opts: ClientOptions): Promise<{ result: Buffer | Error; ms: number }> {
  const t0 = Date.now();
  const rc = await RegistryClient.open(parseReference(`127.0.0.1:${port}/team/app`), { allowedAddresses: ['127.0.0.1'], plainHttp: true, noDockerConfig: true, ...opts });
  try {
    const result = await rc.pullBlobBytes(DESC).catch((e: Error) => e);
    return { result, ms: Date.now() - t0 };
  } finally {
    await rc.close();
  }
}

describe('a registry that drips its answer', () => {
  // One byte every 200 ms: never idle for the 500 ms timeout, and 60 KiB would take 3.4 hours.
  it.each(['length', 'chunked'] as const)('fails as too slow (NETWORK_ERROR) within seconds (%s framing)', async (framing) => {
    const port = await dripServer(1, 200, framing);
    const { result, ms } = await pull(port, { timeoutMs: 500, minBytesPerSecond: 1024 });
    expect(result).toMatchObject({ code: 'NETWORK_ERROR', message: expect.stringContaining('too slow') });
    expect(ms).toBeLessThan(3000);
  }, 15_000);

  it.each(['length', 'chunked'] as const)('still receives an honest answer that is slow but steady above the rate (%s framing)', async (framing) => {
    // 4 KiB every 100 ms (40 KiB/s) against a minimum of 8 KiB/s: 1.5 s, three times the timeout.
    const port = await dripServer(4096, 100, framing);
    const { result, ms } = await pull(port, { timeoutMs: 500, minBytesPerSecond: 8 * 1024 });
    expect(Buffer.isBuffer(result) && result.equals(BLOB)).toBe(true);
    expect(ms).toBeGreaterThan(1000);
  }, 15_000);
});

describe('the overall deadline', () => {
  // The sizes are the registry's word (up to the .ctp limit, 16 GiB: ~73 h at 64 KiB/s); the
  // deploy server and admission must not give a registry a slot for days.
  it("the servers' deadline grows with the bundle but never past 2 hours", () => {
    const t0 = 1_800_000_000_000;
    const MiB = 1024 * 1024;
    const o = { overall: SERVER_FETCH_DEADLINE };
    expect(deadlineOf(o, t0, 0)).toBe(t0 + 10 * 60_000);
    expect(deadlineOf(o, t0, 256 * MiB)).toBe(t0 + 10 * 60_000 + 4096_000);
    expect(deadlineOf(o, t0, 16 * 1024 * MiB)).toBe(t0 + 2 * 3600_000);
    expect(deadlineOf(o, t0, Number.MAX_SAFE_INTEGER)).toBe(t0 + 2 * 3600_000);
    // A caller's own deadline still wins when it is earlier; without maxMs there is no cap.
    expect(deadlineOf({ ...o, deadline: t0 + 60_000 }, t0, 16 * 1024 * MiB)).toBe(t0 + 60_000);
    expect(deadlineOf({ overall: { baseMs: 1000, minBytesPerSecond: 1024 } }, t0, 1024 * 1024)).toBe(t0 + 1000 + 1024_000);
    expect(deadlineOf({ overall: { baseMs: 1000, minBytesPerSecond: 1024, maxMs: 5000 } }, t0, 1024 * 1024)).toBe(t0 + 5000);
    expect(deadlineOf({}, t0, 1024)).toBeUndefined();
  });

  it('ends an answer that keeps the rate but outlasts the deadline, and sends nothing after it', async () => {
    // 1 KiB every 50 ms (20 KiB/s, above the 1 KiB/s minimum): 3 s for the blob, the deadline is 1 s.
    const port = await dripServer(1024, 50, 'length');
    const { result, ms } = await pull(port, { timeoutMs: 5000, minBytesPerSecond: 1024, deadline: Date.now() + 1000 });
    expect(result).toMatchObject({ code: 'NETWORK_ERROR', message: expect.stringMatching(/too slow: the overall deadline/) });
    expect(ms).toBeLessThan(2500);
    const rc = await RegistryClient.open(parseReference(`127.0.0.1:${port}/team/app`), { allowedAddresses: ['127.0.0.1'], plainHttp: true, noDockerConfig: true, deadline: Date.now() - 1 });
    try {
      await expect(rc.pullBlobBytes(DESC)).rejects.toMatchObject({ code: 'NETWORK_ERROR', message: expect.stringContaining('not sent') });
    } finally {
      await rc.close();
    }
  }, 15_000);
});

/**
 * Answers every request with interim (1xx) heads, `count` of them `everyMs` apart, then BLOB (or
 * nothing more when `count` is Infinity). undici restarts its head timeout with every 1xx, and
 * the overall deadline reached it only as that timeout: a `102 Processing` every 500 ms held a
 * fetch with timeout 1 s and deadline 3 s for ever. Only 127.0.0.1.
 */
async function interimServer(status: string, everyMs: number, count: number): Promise<number> {
  return rawServer((s, timers) => {
    s.once('data', () => {
      let sent = 0;
      const once = (): void => {
        if (s.destroyed) return;
        if (sent++ < count) {
          s.write(`HTTP/1.1 ${status}\r\n\r\n`);
          if (everyMs === 0) return once();
          const t = setTimeout(once, everyMs);
          timers.add(t);
        } else s.write(`HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${BLOB.length}\r\n\r\n`, () => s.write(BLOB));
      };
      once();
    });
  });
}

describe('a registry that answers only with interim (1xx) heads', () => {
  it('fails within the timeout when a 102 comes every 400 ms and no final head (NETWORK_ERROR)', async () => {
    const port = await interimServer('102 Processing', 400, Infinity);
    const { result, ms } = await pull(port, { timeoutMs: 1000, deadline: Date.now() + 3000 });
    expect(result).toMatchObject({ code: 'NETWORK_ERROR', message: expect.stringMatching(/no final answer .*no answer head within \d+ ms \(after \d+ interim 1xx answers\)/) });
    expect(ms).toBeLessThan(4000);
  }, 20_000);

  it('fails at the overall deadline when the timeout is long', async () => {
    const port = await interimServer('103 Early Hints', 1000, Infinity);
    const { result, ms } = await pull(port, { timeoutMs: 60_000, deadline: Date.now() + 1500 });
    expect(result).toMatchObject({ code: 'NETWORK_ERROR', message: expect.stringContaining('no final answer') });
    expect(ms).toBeLessThan(5000);
  }, 20_000);

  it('refuses more than a few interim answers at once, whatever the timeout', async () => {
    const port = await interimServer('103 Early Hints', 0, 50);
    const { result, ms } = await pull(port, { timeoutMs: 60_000 });
    expect(result).toMatchObject({ code: 'NETWORK_ERROR', message: expect.stringContaining('more than 4 interim (1xx) answers') });
    expect(ms).toBeLessThan(5000);
  }, 20_000);

  it('still takes an honest answer after an Early Hints', async () => {
    const port = await interimServer('103 Early Hints', 0, 1);
    const { result } = await pull(port, { timeoutMs: 2000, deadline: Date.now() + 10_000 });
    expect(Buffer.isBuffer(result) && result.equals(BLOB)).toBe(true);
  }, 20_000);
});
