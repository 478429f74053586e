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

async function outcome(b: Buffer): Promise<string> {
  try {
    checkOciLayout(await openCtp(b));
    return 'ok';
  } catch (e) {
    if (!(e instanceof CtError)) return `raw:${(e as Error)?.message}`;
    return e.code;
  }
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
