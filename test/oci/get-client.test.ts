/**
 * The registry transport's GET client (src/oci/get-client.ts): answers read into recycled slabs,
 * strictly. Scripted raw TCP (and one TLS) servers play well-behaved and hostile registries: a
 * framing it does not read is handed back (`undefined`) before any body byte is taken, a
 * malformed head is a network error, a body cut short is NETWORK_ERROR, bytes past the stated
 * length never reach the caller, and the guard's lookup runs on every socket.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetClient, type GetReply } from '../../src/oci/get-client.js';
import { NetworkGuard } from '../../src/oci/guard.js';
import { release } from '../../src/oci/slabs.js';
import { RegistryClient } from '../../src/oci/client.js';
import { parseReference } from '../../src/oci/reference.js';

const guard = new NetworkGuard({ allowedAddresses: ['127.0.0.1'] });
const closers: (() => void)[] = [];
afterEach(() => {
  while (closers.length) closers.pop()!();
});

/** A TCP server answering each request (one per head received) with `answer(n, socket)`. */
async function scripted(answer: (nth: number, s: Socket) => void): Promise<{ url: string; connections: () => number; requests: string[] }> {
  const requests: string[] = [];
  let connections = 0;
  const sockets = new Set<Socket>();
  const srv: Server = createServer((s) => {
    connections++;
    sockets.add(s);
    let pending = '';
    s.on('error', () => undefined);
    s.on('data', (d) => {
      pending += d.toString('latin1');
      for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
        requests.push(pending.slice(0, end));
        pending = pending.slice(end + 4);
        answer(requests.length, s);
      }
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  closers.push(() => {
    for (const s of sockets) s.destroy();
    srv.close();
  });
  return { url: `http://127.0.0.1:${(srv.address() as { port: number }).port}`, connections: () => connections, requests };
}

function client(timeoutMs = 5000): GetClient {
  const c = new GetClient({ lookup: guard.lookup, timeoutMs });
  closers.push(() => c.close());
  return c;
}

/** The body's bytes, each chunk released as the fetch path does. */
async function bytesOf(r: GetReply): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r.body) {
    parts.push(Buffer.from(c as Buffer));
    release(c as Buffer);
  }
  return Buffer.concat(parts);
}

async function failure(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return String((e as { code?: string }).code);
  }
  throw new Error('expected a failure');
}

describe('answers it reads', () => {
  it('a Content-Length body, byte for byte, on one kept-alive connection for several requests', async () => {
    const blob = randomBytes(3 * 1024 * 1024 + 17);
    const srv = await scripted((_n, s) => void s.write(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${blob.length}\r\nX-Twice: a\r\nx-twice: b\r\n\r\n`), blob])));
    const c = client();
    for (let i = 0; i < 3; i++) {
      const r = (await c.request(new URL(`${srv.url}/v2/a/blobs/x?n=${i}`), 'GET', { 'user-agent': 't', range: 'bytes=0-9' }))!;
      expect(r.statusCode).toBe(200);
      expect(r.headers['x-twice']).toEqual(['a', 'b']);
      expect((await bytesOf(r)).equals(blob)).toBe(true);
    }
    expect(srv.connections()).toBe(1);
    expect(srv.requests[2]).toMatch(/^GET \/v2\/a\/blobs\/x\?n=2 HTTP\/1\.1\r\nhost: 127\.0\.0\.1:\d+\r\nuser-agent: t\r\nrange: bytes=0-9$/);
    // Released chunks were read into recycled slabs: far fewer than 3 × 3 MiB of them were made.
    expect(c.slabs.made).toBeLessThanOrEqual(6);
  });

  it('HEAD and 204 have no body whatever length they state', async () => {
    const srv = await scripted((n, s) => void s.write(n === 1 ? 'HTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n' : 'HTTP/1.1 204 No Content\r\n\r\n'));
    const c = client();
    const head = (await c.request(new URL(`${srv.url}/h`), 'HEAD', {}))!;
    expect([head.statusCode, (await bytesOf(head)).length]).toEqual([200, 0]);
    const none = (await c.request(new URL(`${srv.url}/n`), 'GET', {}))!;
    expect([none.statusCode, (await bytesOf(none)).length]).toEqual([204, 0]);
    expect(srv.connections()).toBe(1);
  });

  it('a kept-alive connection the server closed meanwhile: asked again on a new one', async () => {
    const srv = await scripted((_n, s) => void s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
    const c = client();
    expect((await bytesOf((await c.request(new URL(`${srv.url}/1`), 'GET', {}))!)).toString()).toBe('ok');
    await new Promise((r) => setTimeout(r, 50));
    expect((await bytesOf((await c.request(new URL(`${srv.url}/2`), 'GET', {}))!)).toString()).toBe('ok');
    expect(srv.connections()).toBe(2);
  });

  it('https, with the server name and trust roots given', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ct-get-tls-'));
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost', '-days', '1'], { stdio: 'ignore' });
      const cert = readFileSync(join(dir, 'c.pem'));
      const blob = randomBytes(2 * 1024 * 1024);
      const srv = createTlsServer({ key: readFileSync(join(dir, 'k.pem')), cert }, (s) => {
        s.on('error', () => undefined);
        s.once('data', () => s.write(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${blob.length}\r\n\r\n`), blob])));
      });
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
      closers.push(() => srv.close());
      const c = new GetClient({ lookup: guard.lookup, timeoutMs: 5000, ca: cert });
      closers.push(() => c.close());
      const r = (await c.request(new URL(`https://localhost:${(srv.address() as { port: number }).port}/b`), 'GET', {}))!;
      expect((await bytesOf(r)).equals(blob)).toBe(true);
      // Without the trust root the certificate is refused.
      const strict = client();
      expect(await failure(strict.request(new URL(`https://localhost:${(srv.address() as { port: number }).port}/b`), 'GET', {}))).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('answers it hands back or refuses', () => {
  it('chunked, unframed and 1xx answers are handed back untouched (the transport asks undici)', async () => {
    const heads = ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n', 'HTTP/1.1 200 OK\r\n\r\nuntil close', 'HTTP/1.1 100 Continue\r\n\r\n'];
    const srv = await scripted((n, s) => void s.write(heads[n - 1]));
    const c = client();
    for (let i = 0; i < heads.length; i++) expect(await c.request(new URL(`${srv.url}/${i}`), 'GET', {})).toBeUndefined();
  });

  it.each([
    ['a status line that is not HTTP/1.x', 'HTTP/2 200 OK\r\n\r\n', 'HPE_INVALID_RESPONSE'],
    ['a folded header', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\n  x\r\n\r\nx', 'HPE_INVALID_HEADER_TOKEN'],
    ['a bare LF inside the head', 'HTTP/1.1 200 OK\r\nContent-Length: 1\nX: y\r\n\r\nx', 'HPE_INVALID_HEADER_TOKEN'],
    ['a NUL in a header value', 'HTTP/1.1 200 OK\r\nX: a\0b\r\nContent-Length: 1\r\n\r\nx', 'HPE_INVALID_HEADER_TOKEN'],
    ['two different lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx', 'HPE_INVALID_CONTENT_LENGTH'],
    ['a negative length', 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', 'HPE_INVALID_CONTENT_LENGTH'],
    ['a head of 20 KiB', `HTTP/1.1 200 OK\r\nX: ${'a'.repeat(20 * 1024)}\r\n\r\n`, 'UND_ERR_HEADERS_OVERFLOW'],
    ['an endless head', `HTTP/1.1 200 OK\r\n${'X: y\r\n'.repeat(4000)}`, 'UND_ERR_HEADERS_OVERFLOW'],
  ])('%s: refused', async (_what, answer, code) => {
    const srv = await scripted((_n, s) => void s.write(answer));
    expect(await failure(client().request(new URL(`${srv.url}/x`), 'GET', {}))).toBe(code);
  });

  it('a request header with a line break is refused before anything is sent', async () => {
    const srv = await scripted(() => undefined);
    expect(await failure(client().request(new URL(`${srv.url}/x`), 'GET', { authorization: 'Bearer a\r\nX-Injected: 1' }))).toBe('UND_ERR_INVALID_ARG');
    expect(srv.requests).toHaveLength(0);
  });

  it('a body cut short is NETWORK_ERROR on the body', async () => {
    const srv = await scripted((_n, s) => void s.end('HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nonly this'));
    const r = (await client().request(new URL(`${srv.url}/x`), 'GET', {}))!;
    expect(await failure(bytesOf(r))).toBe('NETWORK_ERROR');
  });

  it('bytes past the stated length never reach the caller, and the connection is not reused', async () => {
    const srv = await scripted((_n, s) => void s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil'));
    const c = client();
    expect((await bytesOf((await c.request(new URL(`${srv.url}/1`), 'GET', {}))!)).toString()).toBe('ok');
    expect((await bytesOf((await c.request(new URL(`${srv.url}/2`), 'GET', {}))!)).toString()).toBe('ok');
    expect(srv.connections()).toBe(2);
  });

  it('no head within the timeout; no body bytes within it', async () => {
    const silent = await scripted(() => undefined);
    expect(await failure(client(200).request(new URL(`${silent.url}/x`), 'GET', {}))).toMatch(/^UND_ERR_(HEADERS|BODY)_TIMEOUT$/);
    const stalls = await scripted((_n, s) => void s.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'));
    const r = (await client(1000).request(new URL(`${stalls.url}/x`), 'GET', {}))!;
    expect(await failure(bytesOf(r))).toBe('NETWORK_ERROR');
  });

  it('a reader that pauses longer than the timeout is not a registry timeout', async () => {
    const blob = randomBytes(8 * 1024 * 1024);
    const srv = await scripted((_n, s) => void s.write(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${blob.length}\r\n\r\n`), blob])));
    // 1 s of timeout (a loaded CI machine may take a while to answer the head), a pause of 2.5 s.
    const r = (await client(1000).request(new URL(`${srv.url}/x`), 'GET', {}))!;
    await new Promise((res) => setTimeout(res, 2500));
    expect((await bytesOf(r)).equals(blob)).toBe(true);
  });

  it('the socket resolves its host through the guard: a name for a refused address never connects', async () => {
    const srv = await scripted((_n, s) => void s.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'));
    const strict = new GetClient({ lookup: new NetworkGuard({}).lookup, timeoutMs: 2000 });
    closers.push(() => strict.close());
    expect(await failure(strict.request(new URL(srv.url.replace('127.0.0.1', 'localhost')), 'GET', {}))).toBe('REGISTRY_NOT_ALLOWED');
    expect(srv.connections()).toBe(0);
  });

  it('through the registry client: a malformed blob answer is NETWORK_ERROR, a chunked one still read (by undici)', async () => {
    const blob = Buffer.from('{}');
    const digest = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';
    let chunked = false;
    const srv = await scripted((_n, s) => void s.write(chunked ? 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n' : 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nBad Header: x\r\n\r\n{}'));
    const rc = await RegistryClient.open(parseReference(`${srv.url.slice(7)}/team/app`), { allowedAddresses: ['127.0.0.1'], plainHttp: true, noDockerConfig: true });
    try {
      expect(await failure(rc.pullBlobBytes({ digest, size: 2 }))).toBe('NETWORK_ERROR');
      chunked = true;
      expect((await rc.pullBlobBytes({ digest, size: 2 })).equals(blob)).toBe(true);
    } finally {
      await rc.close();
    }
  });
});
