/**
 * The registry transport's own GET client (src/oci/get-client.ts) against what a hostile registry
 * or token service sends, each case found by a hostile review of its first version: a bearer token
 * whose characters lose their high byte in the latin1 head (U+010D U+010A → CR LF) must not smuggle
 * a second request; answer headers decode as UTF-8, as undici decodes them; a head timeout on a
 * kept-alive connection is not taken for a closed socket and asked again; and kept receive buffers
 * count against the fetch's memory bound by the memory they pin, not the bytes they hold.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { createServer, type Server, type Socket } from 'node:net';
import { RegistryClient } from '../../src/oci/client.js';
import { GetClient } from '../../src/oci/get-client.js';
import { NetworkGuard } from '../../src/oci/guard.js';
import { parseReference } from '../../src/oci/reference.js';
import { ChunkBudget, Part } from '../../src/oci/blob-parts.js';
import { Filler, SlabPool } from '../../src/oci/slabs.js';

const closers: (() => void)[] = [];
afterEach(() => {
  while (closers.length) closers.pop()!();
});

/** A raw HTTP/1.1 server: `answer` gets each request head and writes the reply (or nothing). */
async function rawServer(answer: (head: string, s: Socket, n: number, port: number) => void): Promise<{ port: number; requests: string[]; connections: () => number }> {
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  const srv: Server = createServer((s) => {
    connections++;
    sockets.add(s);
    let pending = Buffer.alloc(0);
    s.on('error', () => undefined);
    s.on('data', (d) => {
      pending = Buffer.concat([pending, d]);
      for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
        const head = pending.subarray(0, end).toString('latin1');
        pending = pending.subarray(end + 4);
        requests.push(head);
        answer(head, s, requests.length, (srv.address() as { port: number }).port);
      }
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  closers.push(() => {
    for (const s of sockets) s.destroy();
    srv.close();
  });
  return { port: (srv.address() as { port: number }).port, requests, connections: () => connections };
}

const open = (port: number) => RegistryClient.open(parseReference(`127.0.0.1:${port}/team/app`), { allowedAddresses: ['127.0.0.1'], plainHttp: true, noDockerConfig: true });

describe('the GET client against a hostile registry', () => {
  it('refuses a bearer token that would smuggle a second request into the head', async () => {
    // "\u010d\u010a" are the characters U+010D U+010A: latin1 keeps their low bytes, CR LF.
    const token = `t\u010d\u010a\u010d\u010aDELETE /v2/team/app/manifests/sha256:${'ab'.repeat(32)} HTTP/1.1\u010d\u010ahost: 127.0.0.1\u010d\u010ax-pad: `;
    const reg = await rawServer((head, s, _n, port) => {
      if (head.startsWith('GET /token')) {
        const body = JSON.stringify({ token });
        s.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      } else if (!/authorization: Bearer/i.test(head)) s.write(`HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm="http://127.0.0.1:${port}/token",service="r"\r\nContent-Length: 0\r\n\r\n`);
      else s.write('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
    });
    const rc = await open(reg.port);
    try {
      await expect(rc.resolve('latest')).rejects.toMatchObject({ code: 'NETWORK_ERROR' });
      await new Promise((r) => setTimeout(r, 100));
      expect(reg.requests.some((r) => r.startsWith('DELETE '))).toBe(false);
    } finally {
      await rc.close();
    }
  });

  it('follows a Location with raw UTF-8 bytes to the URL undici would', async () => {
    const reg = await rawServer((_head, s, n) => {
      if (n === 1) s.write(Buffer.concat([Buffer.from('HTTP/1.1 307 Temporary Redirect\r\nLocation: /v2/team/app/tags/list?n=caf'), Buffer.from('é', 'utf8'), Buffer.from('\r\nContent-Length: 0\r\n\r\n')]));
      else s.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"tags":[]}');
    });
    const rc = await open(reg.port);
    try {
      await rc.listTags();
      expect(reg.requests[1].split('\r\n')[0]).toBe('GET /v2/team/app/tags/list?n=caf%C3%A9 HTTP/1.1');
    } finally {
      await rc.close();
    }
  });

  it('does not send a request again after a head timeout on a kept-alive connection', async () => {
    const reg = await rawServer((_head, s, n) => {
      if (n === 1) s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'); // then silence
    });
    const c = new GetClient({ lookup: new NetworkGuard({ allowedAddresses: ['127.0.0.1'] }).lookup, timeoutMs: 300 });
    try {
      await (await c.request(new URL(`http://127.0.0.1:${reg.port}/1`), 'GET', {}))!.body.dump();
      const e = await c.request(new URL(`http://127.0.0.1:${reg.port}/2`), 'GET', {}).catch((x) => x);
      expect(e.code).toBe('UND_ERR_HEADERS_TIMEOUT');
      await new Promise((r) => setTimeout(r, 100));
      expect(reg.requests).toHaveLength(2);
      expect(reg.connections()).toBe(1);
    } finally {
      c.close();
    }
  });
});

describe('the memory bound on kept receive buffers', () => {
  it('charges a kept view of a receive slab the whole slab, once per slab', () => {
    const pool = new SlabPool();
    const budget = new ChunkBudget(3 * 1024 * 1024);
    // One byte from each of many fresh connections (each its own slab): by bytes this is nothing,
    // by memory pinned each costs 1 MiB; the fourth does not fit and the part drops what it kept.
    const parts = Array.from({ length: 5 }, (_, i) => new Part(i, 1, budget));
    parts.forEach((p) => {
      const filler = new Filler(pool);
      filler.next()[0] = 7;
      const view = filler.took(1)!;
      p.advance(1, [view]);
      filler.drop();
    });
    expect(parts.map((p) => p.take() !== undefined)).toEqual([true, true, true, false, false]);
    expect(budget.held).toBe(0);
    // Many views of one slab (one connection reading a blob) are charged once.
    const filler = new Filler(pool);
    const one = new Part(0, 10, budget);
    for (let i = 0; i < 10; i++) {
      filler.next();
      one.advance(1, [filler.took(1)!]);
    }
    expect(budget.held).toBe(1024 * 1024);
    expect(one.take()).toHaveLength(10);
    expect(budget.held).toBe(0);
  });
});
