/**
 * #13 finding 2 on the registry side: what a registry sends before anything authenticates it is
 * hashed first where a digest pins it, and otherwise bounded (bytes, JSON depth, descriptor shape)
 * before the client acts on it. A scripted registry answers each route with hostile bytes; every
 * outcome is a stable code with a bounded message, never a TypeError, a huge buffer or a request
 * made by tag where a digest was due.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RegistryClient } from '../../src/oci/client.js';
import { parseReference } from '../../src/oci/reference.js';
import { MT } from '../../src/oci/media-types.js';
import { fetchCtp } from '../../src/oci/fetch.js';
import { sha256Digest } from '../../src/core/digest.js';
import { ERROR_LIMITS } from '../../src/core/errors.js';

const local = { allowedAddresses: ['127.0.0.1'], plainHttp: true, noDockerConfig: true };
const IMAGE = 'sha256:' + 'cd'.repeat(32);
const deep = (n: number) => `{"mediaType":"x","a":${'['.repeat(n)}${']'.repeat(n)}}`;

type Route = (req: IncomingMessage, res: ServerResponse) => void;
let srv: Server;
let port: number;
let route: Route = (_q, res) => void res.writeHead(404).end();
const seen: string[] = [];
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ct-hostile-reg-'));
  srv = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    req.resume();
    route(req, res);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  port = (srv.address() as { port: number }).port;
});
afterAll(async () => {
  srv.closeAllConnections();
  await new Promise<void>((r) => srv.close(() => r()));
  await rm(dir, { recursive: true, force: true });
});

async function withClient<T>(f: (c: RegistryClient) => Promise<T>): Promise<T> {
  const c = await RegistryClient.open(parseReference(`127.0.0.1:${port}/team/app`), local);
  try {
    return await f(c);
  } finally {
    await c.close();
  }
}

/** The error a call ends in: its code and message length (every message is capped). */
async function failure(p: Promise<unknown>): Promise<{ code: string; bounded: boolean }> {
  try {
    await p;
  } catch (e) {
    const err = e as { code?: string; message: string };
    return { code: String(err.code ?? `not a CtError: ${err.message}`), bounded: err.message.length <= ERROR_LIMITS.messageChars + 100 };
  }
  throw new Error('expected a failure');
}

/** Streams `total` bytes of `fill` (never buffered here), counting what the client took. */
function stream(res: ServerResponse, total: number, fill = ' ', headers: Record<string, string> = {}): { sent: () => number } {
  let sent = 0;
  res.writeHead(200, { 'content-type': MT.imageIndex, ...headers });
  const chunk = Buffer.alloc(64 * 1024, fill);
  const more = () => {
    while (sent < total) {
      sent += chunk.length;
      if (!res.write(chunk)) return void res.once('drain', more);
    }
    res.end();
  };
  res.on('close', () => undefined);
  more();
  return { sent: () => sent };
}

describe('manifests: hashed before they are parsed', () => {
  it('by digest: bytes that do not hash to it are DIGEST_MISMATCH before any parse (not "not JSON")', async () => {
    route = (_q, res) => void res.writeHead(200, { 'content-type': MT.imageManifest }).end('this is not json {{{');
    expect(await failure(withClient((c) => c.getManifest(IMAGE)))).toEqual({ code: 'DIGEST_MISMATCH', bounded: true });
  });

  it('by tag: bytes that do not hash to the Docker-Content-Digest the registry states are DIGEST_MISMATCH', async () => {
    const body = JSON.stringify({ schemaVersion: 2, mediaType: MT.imageManifest });
    route = (_q, res) => void res.writeHead(200, { 'content-type': MT.imageManifest, 'docker-content-digest': IMAGE }).end(body);
    expect(await failure(withClient((c) => c.getManifest('latest')))).toEqual({ code: 'DIGEST_MISMATCH', bounded: true });
    // The same bytes with the right header are accepted.
    route = (_q, res) => void res.writeHead(200, { 'content-type': MT.imageManifest, 'docker-content-digest': sha256Digest(body) }).end(body);
    expect((await withClient((c) => c.getManifest('latest'))).digest).toBe(sha256Digest(body));
  });

  it('by tag: a deeply nested manifest is REGISTRY_ERROR from the depth limit (before recursive code)', async () => {
    route = (_q, res) => void res.writeHead(200, { 'content-type': MT.imageManifest }).end(deep(100_000));
    expect(await failure(withClient((c) => c.getManifest('latest')))).toEqual({ code: 'REGISTRY_ERROR', bounded: true });
  });

  it('a manifest body beyond 4 MiB without a Content-Length is refused without reading it to its end', async () => {
    let s: { sent: () => number } | undefined;
    route = (_q, res) => void (s = stream(res, 512 * 1024 * 1024));
    expect(await failure(withClient((c) => c.getManifest('latest')))).toEqual({ code: 'REGISTRY_ERROR', bounded: true });
    expect(s!.sent()).toBeLessThan(64 * 1024 * 1024);
  });

  it('a manifest that states a Content-Length beyond 4 MiB: REGISTRY_ERROR, and the dropped body does not crash the process', async () => {
    let s: { sent: () => number } | undefined;
    route = (_q, res) => void (s = stream(res, 512 * 1024 * 1024, ' ', { 'content-length': String(512 * 1024 * 1024) }));
    const uncaught: unknown[] = [];
    const onUncaught = (e: unknown): void => void uncaught.push(e);
    process.on('uncaughtException', onUncaught);
    try {
      expect(await failure(withClient((c) => c.getManifest('latest')))).toEqual({ code: 'REGISTRY_ERROR', bounded: true });
      // The body's abort error used to be emitted with no listener: an uncaught exception.
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      process.off('uncaughtException', onUncaught);
    }
    expect(uncaught).toEqual([]);
    expect(s!.sent()).toBeLessThan(64 * 1024 * 1024);
  });
});

describe('referrer lists and tag lists: bounded and shaped', () => {
  it('a referrers answer of 512 MiB: REGISTRY_REFERRERS_TOO_LARGE, the stream dropped; nested 100,000 deep: REGISTRY_ERROR', async () => {
    let s: { sent: () => number } | undefined;
    route = (_q, res) => void (s = stream(res, 512 * 1024 * 1024));
    expect(await failure(withClient((c) => c.referrers(IMAGE)))).toEqual({ code: 'REGISTRY_REFERRERS_TOO_LARGE', bounded: true });
    expect(s!.sent()).toBeLessThan(64 * 1024 * 1024);
    route = (_q, res) => void res.writeHead(200, { 'content-type': MT.imageIndex }).end(deep(100_000));
    expect(await failure(withClient((c) => c.referrers(IMAGE)))).toEqual({ code: 'REGISTRY_ERROR', bounded: true });
  });

  it('descriptors that are not descriptors (null, a tag for a digest, a string size): REGISTRY_ERROR, nothing fetched by tag', async () => {
    for (const bad of [null, { mediaType: MT.imageManifest, digest: 'latest', size: 1 }, { mediaType: MT.imageManifest, digest: IMAGE, size: '1' }, { mediaType: MT.imageManifest, digest: IMAGE, size: 1, annotations: { a: 1 } }]) {
      route = (req, res) => {
        if (req.url!.includes('/referrers/')) return void res.writeHead(200, { 'content-type': MT.imageIndex }).end(JSON.stringify({ schemaVersion: 2, manifests: [bad] }));
        res.writeHead(404).end();
      };
      seen.length = 0;
      expect(await failure(fetchCtp(`127.0.0.1:${port}/team/app@${IMAGE}`, join(dir, 'out.ctp'), local))).toEqual({ code: 'REGISTRY_ERROR', bounded: true });
      expect(seen.filter((s) => s.includes('/manifests/latest'))).toEqual([]);
    }
  });

  it('a recipe manifest whose layers are not descriptors: REGISTRY_ERROR, not a TypeError', async () => {
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.imageManifest, artifactType: MT.ctpRecipe, subject: { mediaType: MT.imageManifest, digest: IMAGE, size: 1 }, layers: [null] }));
    const md = sha256Digest(manifest);
    route = (req, res) => {
      if (req.url!.includes('/referrers/')) return void res.writeHead(200, { 'content-type': MT.imageIndex }).end(JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: MT.imageManifest, digest: md, size: manifest.length, artifactType: MT.ctpRecipe }] }));
      if (req.url!.endsWith(`/manifests/${md}`)) return void res.writeHead(200, { 'content-type': MT.imageManifest }).end(manifest);
      res.writeHead(404).end();
    };
    expect(await failure(fetchCtp(`127.0.0.1:${port}/team/app@${IMAGE}`, join(dir, 'out.ctp'), local))).toEqual({ code: 'REGISTRY_ERROR', bounded: true });
  });

  it('a tag list of 512 MiB: REGISTRY_ERROR, the stream dropped', async () => {
    let s: { sent: () => number } | undefined;
    route = (_q, res) => void (s = stream(res, 512 * 1024 * 1024));
    expect(await failure(withClient((c) => c.listTags()))).toEqual({ code: 'REGISTRY_ERROR', bounded: true });
    expect(s!.sent()).toBeLessThan(64 * 1024 * 1024);
  });

  it('an error answer of 512 MiB is shown by its first bytes, the rest not read', async () => {
    let sent = 0;
    route = (_q, res) => {
      res.writeHead(500);
      const chunk = Buffer.alloc(64 * 1024, 'e');
      const more = () => {
        while (sent < 512 * 1024 * 1024) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.end();
      };
      more();
    };
    expect(await failure(withClient((c) => c.getManifest(IMAGE)))).toEqual({ code: 'REGISTRY_ERROR', bounded: true });
    expect(sent).toBeLessThan(64 * 1024 * 1024);
  });
});

describe('token endpoint', () => {
  it('a token answer of 512 MiB or nested deep: REGISTRY_AUTH_FAILED, bounded', async () => {
    for (const kind of ['huge', 'deep']) {
      let s: { sent: () => number } | undefined;
      route = (req, res) => {
        if (req.url!.startsWith('/token')) {
          if (kind === 'huge') s = stream(res, 512 * 1024 * 1024, ' ', { 'content-type': 'application/json' });
          else res.writeHead(200, { 'content-type': 'application/json' }).end(deep(100_000));
          return;
        }
        res.writeHead(401, { 'www-authenticate': `Bearer realm="http://127.0.0.1:${port}/token",service="reg"` }).end();
      };
      expect(await failure(withClient((c) => c.getManifest(IMAGE)))).toEqual({ code: 'REGISTRY_AUTH_FAILED', bounded: true });
      if (s) expect(s.sent()).toBeLessThan(64 * 1024 * 1024);
    }
  });
});
