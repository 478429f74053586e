/**
 * `ct fetch` downloads big blobs in ranged parts, in file order, so the tar hash follows the
 * downloads (src/oci/blob-parts.ts). A real docker-registry serves the blobs; a small proxy in
 * front of it plays registries that ignore Range, change bytes of one part, state another range,
 * or stop honouring Range half-way. Whatever they do, the result is the identical .ctp or a stable
 * code with nothing at the output path.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pushCtp } from '../../src/oci/push.js';
import { fetchCtp } from '../../src/oci/fetch.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { makeCtp } from './fixture.js';

const local = { allowedAddresses: ['127.0.0.1'], plainHttp: true, noDockerConfig: true };
const PART = 64 * 1024;

type Mode = 'pass' | 'ignore-range' | 'flip-byte' | 'wrong-range' | 'range-then-whole' | 'long-part';
let mode: Mode = 'pass';
let ranged = 0;
let reg: TestRegistry;
let proxy: Server;
let proxyHost: string;
let dir: string;
let original: Buffer;

/** Forwards to the registry; for blob GETs with a Range header, misbehaves as `mode` says. */
function forward(req: IncomingMessage, res: ServerResponse): void {
  const headers = { ...req.headers };
  const isRange = req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '') && typeof headers.range === 'string';
  // Which ranged request this is, fixed when it arrives: with three parts in flight the counter
  // has moved on by the time this answer's bytes stream through.
  const nth = isRange ? ++ranged : 0;
  if (isRange && (mode === 'ignore-range' || (mode === 'range-then-whole' && nth > 2))) delete headers.range;
  const up = request({ host: '127.0.0.1', port: reg.port, method: req.method, path: req.url, headers }, (r) => {
    const out = { ...r.headers };
    if (isRange && r.statusCode === 206 && mode === 'wrong-range') out['content-range'] = String(out['content-range']).replace(/^bytes (\d+)-/, (_m, a: string) => `bytes ${Number(a) + 1}-`);
    if (isRange && r.statusCode === 206 && mode === 'long-part') delete out['content-length'];
    res.writeHead(r.statusCode ?? 502, out);
    let first = true;
    r.on('data', (c: Buffer) => {
      // The third ranged answer gets its first byte changed: same length, other content.
      if (isRange && mode === 'flip-byte' && nth === 3 && first) c = Buffer.concat([Buffer.from([c[0] ^ 1]), c.subarray(1)]);
      first = false;
      res.write(c);
    });
    r.on('end', () => (isRange && mode === 'long-part' ? res.end(Buffer.alloc(10)) : res.end()));
  });
  up.on('error', () => res.destroy());
  req.pipe(up);
}

beforeAll(async () => {
  reg = await startRegistry();
  dir = await mkdtemp(join(tmpdir(), 'ct-fetch-ranges-'));
  proxy = createServer(forward);
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  proxyHost = `127.0.0.1:${(proxy.address() as { port: number }).port}`;
  const ctp = join(dir, 'in.ctp');
  // Random content, so the layer blob stays ~300 KiB after gzip: five parts of 64 KiB.
  await makeCtp(ctp, { name: 'ranges', layers: [{ 'data/blob.bin': randomBytes(300 * 1024) }] });
  await pushCtp(ctp, `${reg.host}/team/ranges:1`, local);
  original = await readFile(ctp);
});
afterAll(async () => {
  proxy?.closeAllConnections();
  await new Promise<void>((r) => (proxy ? proxy.close(() => r()) : r()));
  await reg?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function fetchVia(m: Mode, out: string, heldBytes?: number): Promise<void> {
  mode = m;
  ranged = 0;
  await fetchCtp(`${proxyHost}/team/ranges:1`, out, { ...local, partBytes: PART, concurrency: 3, heldBytes });
}

/** Nothing at the output path and no temp file beside it. */
async function nothingWritten(out: string): Promise<void> {
  expect(existsSync(out)).toBe(false);
  expect((await readdir(dir)).filter((f) => f.includes('.tmp') || f.startsWith('.'))).toEqual([]);
}

describe('ct fetch in ranged parts', () => {
  it('rebuilds the identical .ctp from ranged parts', async () => {
    const out = join(dir, 'pass.ctp');
    await fetchVia('pass', out);
    expect(ranged).toBeGreaterThanOrEqual(5);
    expect(Buffer.compare(await readFile(out), original)).toBe(0);
  });

  it('a registry that ignores Range: each blob fetched whole once, the identical .ctp', async () => {
    const out = join(dir, 'whole.ctp');
    await fetchVia('ignore-range', out);
    // Only the probe asked for a range; every later blob request was a plain GET.
    expect(ranged).toBe(1);
    expect(Buffer.compare(await readFile(out), original)).toBe(0);
  });

  it('one changed byte in one part: DIGEST_MISMATCH, nothing written', async () => {
    const out = join(dir, 'flip.ctp');
    await expect(fetchVia('flip-byte', out)).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
    await nothingWritten(out);
  });

  it('a 206 stating another range than asked: REGISTRY_ERROR, nothing written', async () => {
    const out = join(dir, 'wrong-range.ctp');
    await expect(fetchVia('wrong-range', out)).rejects.toMatchObject({ code: 'REGISTRY_ERROR', message: expect.stringContaining('asked for bytes') });
    await nothingWritten(out);
  });

  it('Range honoured, then a whole blob for a later part: REGISTRY_ERROR, nothing written', async () => {
    const out = join(dir, 'then-whole.ctp');
    await expect(fetchVia('range-then-whole', out)).rejects.toMatchObject({ code: 'REGISTRY_ERROR', message: expect.stringContaining('honoured Range once') });
    await nothingWritten(out);
  });

  it('a part longer than asked: DIGEST_MISMATCH, nothing written', async () => {
    const out = join(dir, 'long.ctp');
    await expect(fetchVia('long-part', out)).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
    await nothingWritten(out);
  });

  // The tar hash takes downloaded bytes from memory; past the bound (here 1.5 parts, then
  // nothing at all) parts are hashed from the file instead, with the same result and checks.
  it('over the memory bound for received bytes: parts hashed from the file, the identical .ctp', async () => {
    for (const [i, held] of [PART * 1.5, 0].entries()) {
      const out = join(dir, `held-${i}.ctp`);
      await fetchVia('pass', out, held);
      expect(Buffer.compare(await readFile(out), original)).toBe(0);
      const whole = join(dir, `held-whole-${i}.ctp`);
      await fetchVia('ignore-range', whole, held);
      expect(Buffer.compare(await readFile(whole), original)).toBe(0);
    }
  });

  it('over the memory bound, one changed byte: DIGEST_MISMATCH, nothing written', async () => {
    for (const held of [PART * 1.5, 0]) {
      const out = join(dir, 'held-flip.ctp');
      await expect(fetchVia('flip-byte', out, held)).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
      await nothingWritten(out);
    }
  });
});
