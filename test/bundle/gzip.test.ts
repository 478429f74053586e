import { describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { BlockGzip, GZIP_BLOCK } from '../../src/bundle/gzip.js';

async function compress(input: Buffer, chunk: number): Promise<Buffer> {
  const out: Buffer[] = [];
  const g = new BlockGzip(async (b) => void out.push(b));
  for (let o = 0; o < input.length; o += chunk) await g.write(input.subarray(o, o + chunk));
  await g.end();
  return Buffer.concat(out);
}

describe('BlockGzip (parallel, deterministic, one gzip member)', () => {
  const text = Buffer.from('the quick brown fox jumps over the lazy dog\n'.repeat(80_000));
  const input = Buffer.concat([text, randomBytes(GZIP_BLOCK + 17)]);

  it('round-trips through a standard gunzip, across block boundaries and for empty input', async () => {
    expect(gunzipSync(await compress(input, 65_536)).equals(input)).toBe(true);
    expect(gunzipSync(await compress(Buffer.alloc(0), 1)).length).toBe(0);
    expect(gunzipSync(await compress(Buffer.alloc(GZIP_BLOCK, 1), GZIP_BLOCK)).equals(Buffer.alloc(GZIP_BLOCK, 1))).toBe(true);
  });

  it('gives the same bytes however the input is chunked, with a fixed header', async () => {
    const a = await compress(input, 512);
    const b = await compress(input, 3 * GZIP_BLOCK);
    expect(a.equals(b)).toBe(true);
    expect([...a.subarray(0, 10)]).toEqual([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    expect(a.length).toBeLessThan(input.length);
  });
});
