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
/** Blob GETs: how many are being answered now, the most at once, and every answer held back by. */
let inflight = 0;
let maxInflight = 0;
let delayMs = 0;
let reg: TestRegistry;
let proxy: Server;
let proxyHost: string;
let dir: string;
let original: Buffer;
let bigOriginal: Buffer;

/** Forwards to the registry; for blob GETs with a Range header, misbehaves as `mode` says. */
function forward(req: IncomingMessage, res: ServerResponse): void {
  if (delayMs > 0) {
    // A farther registry: every answer comes a little later (its requests are read at once).
    req.pause();
    setTimeout(() => (req.resume(), forwardNow(req, res)), delayMs);
  } else forwardNow(req, res);
}

function forwardNow(req: IncomingMessage, res: ServerResponse): void {
  const headers = { ...req.headers };
  const isBlob = req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '');
  if (isBlob) {
    maxInflight = Math.max(maxInflight, ++inflight);
    res.on('close', () => inflight--);
  }
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
  // One 9 MiB layer: more than one 8 MiB range, less than one near-registry part.
  const big = join(dir, 'big.ctp');
  await makeCtp(big, { name: 'big', layers: [{ 'data/big.bin': randomBytes(9 * 1024 * 1024) }] });
  await pushCtp(big, `${reg.host}/team/big:1`, local);
  bigOriginal = await readFile(big);
});
afterAll(async () => {
  proxy?.closeAllConnections();
  await new Promise<void>((r) => (proxy ? proxy.close(() => r()) : r()));
  await reg?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function fetchVia(m: Mode, out: string, heldBytes?: number, lookaheadBytes?: number): Promise<void> {
  mode = m;
  ranged = 0;
  maxInflight = 0;
  await fetchCtp(`${proxyHost}/team/ranges:1`, out, { ...local, partBytes: PART, concurrency: 3, heldBytes, lookaheadBytes });
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

// Each download starts only when the tar hash is within the look-ahead of its first byte
// (blob-parts.ts Frontier); a near registry gets whole blobs in file order, a far one ranges.
describe('ct fetch look-ahead over the tar hash', () => {
  it('look-ahead 0: one blob request at a time, in file order, the identical .ctp', async () => {
    const out = join(dir, 'ahead-0.ctp');
    await fetchVia('pass', out, undefined, 0);
    expect(ranged).toBeGreaterThanOrEqual(5);
    expect(maxInflight).toBe(1);
    expect(Buffer.compare(await readFile(out), original)).toBe(0);
    // With no bound, three parts were asked for at once.
    await fetchVia('pass', join(dir, 'ahead-inf.ctp'), undefined, Infinity);
    expect(maxInflight).toBeGreaterThan(1);
  });

  // A library caller's NaN (e.g. Number of a bad setting) takes the defaults instead of a gate
  // that never opens (Math.max(0, NaN) is NaN; the fetch used to wait for ever).
  it('NaN limits: the defaults, the identical .ctp', async () => {
    const out = join(dir, 'ahead-nan.ctp');
    mode = 'pass';
    await fetchCtp(`${proxyHost}/team/ranges:1`, out, { ...local, partBytes: PART, concurrency: Number.NaN, heldBytes: Number.NaN, lookaheadBytes: Number.NaN });
    expect(Buffer.compare(await readFile(out), original)).toBe(0);
  });

  it('look-ahead 0 and a failing request: the stable code, nothing written, no download left waiting', async () => {
    const flip = join(dir, 'ahead-flip.ctp');
    await expect(fetchVia('flip-byte', flip, undefined, 0)).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
    await nothingWritten(flip);
    const whole = join(dir, 'ahead-whole.ctp');
    await expect(fetchVia('range-then-whole', whole, undefined, 0)).rejects.toMatchObject({ code: 'REGISTRY_ERROR' });
    await nothingWritten(whole);
    expect(inflight).toBe(0);
  });

  // Near or far is timed (the quicker of two small answers against 10 ms): a far registry here
  // answers 30 ms late whatever the machine's load; "near" is asked for by making every answer near.
  it('a near registry: the 9 MiB blob by one GET; a far one (30 ms per answer): 8 MiB ranges', async () => {
    try {
      for (const [wait, expectRanges] of [[0, false], [30, true]] as const) {
        delayMs = wait;
        ranged = 0;
        const out = join(dir, `big-${wait}.ctp`);
        await fetchCtp(`${proxyHost}/team/big:1`, out, { ...local, nearMs: wait === 0 ? Infinity : undefined });
        expect(ranged > 0).toBe(expectRanges);
        expect(Buffer.compare(await readFile(out), bigOriginal)).toBe(0);
      }
    } finally {
      delayMs = 0;
    }
  });
});
