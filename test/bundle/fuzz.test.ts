import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { CtError } from '../../src/core/errors.js';
import { packCtp } from '../../src/bundle/pack/pack.js';
import { openCtp } from '../../src/bundle/read.js';
import { checkOciLayout } from '../../src/bundle/check-layout.js';
import { repoRoot } from '../support/cli.js';
import { writeCtp } from '../../src/bundle/write.js';
import { ERROR_LIMITS } from '../../src/core/errors.js';
import type { TarLimits } from '../../src/bundle/limits.js';
import { encodeHeader, END_OF_ARCHIVE } from '../../src/bundle/tar-write.js';
import { rawEntry } from './tar-fixtures.js';

// Whatever bytes arrive, opening and checking a bundle ends in success or a CtError with one of the
// archive/bundle codes — never a raw exception, a crash or a hang.
const ALLOWED = new Set([
  'TAR_MALFORMED',
  'GZIP_MALFORMED',
  'TAR_UNSAFE_PATH',
  'TAR_UNSAFE_LINK',
  'TAR_DEVICE_NODE',
  'TAR_DUPLICATE_ENTRY',
  'TAR_LIMIT_EXCEEDED',
  'MANIFEST_INVALID',
  'OCI_LAYOUT_INVALID',
  'UNSUPPORTED_VERSION',
  'DIGEST_MISMATCH',
  'MALFORMED_BUNDLE',
  'COMPRESSION_RATIO_EXCEEDED',
  'TRAILING_DATA',
  'UNSIGNED_CONTENT',
]);

let tmp: string;
let good: Buffer;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'ct-bundle-fuzz-'));
  await packCtp({ from: { dir: join(repoRoot, 'examples', 'hello') }, out: join(tmp, 'h.ctp') });
  good = await readFile(join(tmp, 'h.ctp'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function outcome(b: Buffer, limits?: Partial<TarLimits>): Promise<string> {
  try {
    checkOciLayout(await openCtp(b, limits));
    return 'ok';
  } catch (e) {
    if (!(e instanceof CtError)) return `raw:${(e as Error)?.message}`;
    // No input may make an error long (#13 finding 2).
    if (e.message.length > ERROR_LIMITS.messageChars || JSON.stringify(e.details).length > 2 * ERROR_LIMITS.detailsChars) return `long:${e.code}`;
    return e.code;
  }
}

/** The good bundle with manifest.toml replaced (rewritten as a fresh archive). */
async function withManifest(text: string): Promise<Buffer> {
  const a = await openCtp(good);
  const files = new Map<string, Buffer>();
  for (const [n, e] of a.entries) files.set(n, e.data ?? Buffer.alloc(0));
  files.set('manifest.toml', Buffer.from(text));
  const p = join(tmp, 'm.ctp');
  await writeCtp(p, files);
  return readFile(p);
}

function paxEntry(records: [string, string][], type = 'x'): Buffer {
  let body = '';
  for (const [k, v] of records) {
    const rec = ` ${k}=${v}\n`;
    let len = Buffer.byteLength(rec) + 2;
    while (String(len).length + Buffer.byteLength(rec) !== len) len = String(len).length + Buffer.byteLength(rec);
    body += `${len}${rec}`;
  }
  return rawEntry({ name: 'PaxHeader/x', type, data: body });
}

describe('openCtp + checkOciLayout on mutated bundles', () => {
  const mutation = fc.record({
    flips: fc.array(fc.record({ at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }), { minLength: 1, maxLength: 4 }),
    cut: fc.option(fc.nat(), { nil: undefined }),
    gzip: fc.boolean(),
  });

  it('flipped bytes and truncations end in ok or a bundle error code', async () => {
    await fc.assert(
      fc.asyncProperty(mutation, async (m) => {
        let b = Buffer.from(m.gzip ? gzipSync(good) : good);
        for (const f of m.flips) b[f.at % b.length] ^= f.xor;
        if (m.cut !== undefined) b = b.subarray(0, m.cut % b.length);
        const r = await outcome(b);
        expect(r === 'ok' || ALLOWED.has(r)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});

// #13: each class the probe found stays closed. Seeded (fast-check's seed), small budgets.
describe('hostile classes (seeded)', () => {
  it('huge and deep TOML in manifest.toml: refused by the limits, short errors, never a raw exception', async () => {
    const shape = fc.record({
      tables: fc.integer({ min: 0, max: 20_000 }),
      keys: fc.integer({ min: 0, max: 6_000 }),
      depth: fc.integer({ min: 0, max: 3_000 }),
      inline: fc.boolean(),
      dotted: fc.integer({ min: 0, max: 40 }),
    });
    await fc.assert(
      fc.asyncProperty(shape, async (m) => {
        const open = m.inline ? '{a = ' : '[';
        const close = m.inline ? '}' : ']';
        const text = [
          `deep = ${open.repeat(m.depth)}1${close.repeat(m.depth)}`,
          `${Array.from({ length: m.dotted + 1 }, (_, i) => `k${i}`).join('.')} = 1`,
          ...Array.from({ length: m.keys }, (_, i) => `key${i} = ${i}`),
          ...Array.from({ length: m.tables }, (_, i) => `[t${i}]`),
        ].join('\n');
        const r = await outcome(await withManifest(text));
        expect(['MANIFEST_INVALID', 'TAR_LIMIT_EXCEEDED']).toContain(r);
      }),
      { numRuns: 15, seed: 0x13_02 },
    );
  }, 60_000);

  it('high-ratio gzip: refused by the ratio (floor lowered so runs stay small)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 9 }), async (mib, level) => {
        const size = mib * 1024 * 1024;
        const tar = Buffer.concat([encodeHeader({ name: `oci-layout/blobs/sha256/${'b'.repeat(64)}`, type: 'File', size, mode: 0o644, mtime: 0 }), Buffer.alloc(size), END_OF_ARCHIVE]);
        const r = await outcome(gzipSync(tar, { level }), { ratioFloorBytes: 256 * 1024 });
        expect(r).toBe('COMPRESSION_RATIO_EXCEEDED');
      }),
      { numRuns: 12, seed: 0x13_06 },
    );
  }, 60_000);

  it('trailing data after the gzip member or past the tar record: TRAILING_DATA', async () => {
    const gz = gzipSync(good);
    const record = Math.ceil(good.length / 10240) * 10240 - good.length;
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 4096 }), fc.boolean(), async (tail, inGzip) => {
        const t = Buffer.from(tail);
        const b = inGzip ? Buffer.concat([gz, t]) : Buffer.concat([good, Buffer.alloc(record), t]);
        expect(await outcome(b)).toBe('TRAILING_DATA');
      }),
      { numRuns: 60, seed: 0x13_66 },
    );
  });

  it('unsigned extended headers in front of an entry: refused unless they are what the writer makes', async () => {
    const first = good.toString('utf8', 0, good.indexOf(0));
    const key = fc.constantFrom('comment', 'path', 'mtime', 'uname', 'SCHILY.xattr.user.x', 'LIBARCHIVE.creationtime', 'size', 'charset');
    const header = fc.oneof(
      fc.record({ kind: fc.constant('x' as const), recs: fc.array(fc.tuple(key, fc.constantFrom(first, 'x', '0', `${first}\u0000j`)), { minLength: 1, maxLength: 3 }) }),
      fc.record({ kind: fc.constantFrom('g' as const, 'L' as const, 'K' as const), recs: fc.constant([] as [string, string][]) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(header, { minLength: 1, maxLength: 5 }), async (hs) => {
        const parts = hs.map((h) => (h.kind === 'x' || h.kind === 'g' ? paxEntry(h.kind === 'g' ? [['comment', 'g']] : h.recs, h.kind) : rawEntry({ name: '././@LongLink', type: h.kind, data: `${first}\0` })));
        const r = await outcome(Buffer.concat([...parts, good]));
        // Only one pax header whose records are exactly what the writer makes (a path naming the
        // entry itself, an mtime) and/or one long name of the entry may pass.
        const writerLike =
          hs.filter((h) => h.kind === 'x').length <= 1 &&
          hs.filter((h) => h.kind === 'L').length <= 1 &&
          hs.every((h) => h.kind === 'L' || (h.kind === 'x' && h.recs.every(([k, v]) => (k === 'path' && v === first) || (k === 'mtime' && v === '0'))));
        // (a numeric mtime other than 0 would pass too, as a ustar mtime does: metadata, not content)
        if (!writerLike) expect(r).not.toBe('ok');
        if (hs.length === 1 && hs[0].kind === 'x' && hs[0].recs.some(([k, v]) => k === 'mtime' && v !== '0')) expect(r).not.toBe('ok');
        expect(r === 'ok' || ALLOWED.has(r)).toBe(true);
      }),
      { numRuns: 100, seed: 0x13_05 },
    );
  });
});
