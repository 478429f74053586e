/**
 * #13 finding 6: decompression and unpack bounds. A gzip bomb is refused by its ratio after a
 * bounded amount of output; data after the gzip member or after the tar's end (beyond the record
 * padding) is refused as it arrives — the inputs below never end, so reading them all would hang;
 * entries are bounded over all layers together, before anything is written.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { constants, createGzip, gzipSync } from 'node:zlib';
import { packCtp } from '../../src/bundle/pack/pack.js';
import { openCtp } from '../../src/bundle/read.js';
import { applyLayers } from '../../src/bundle/apply-layers.js';
import { readTar } from '../../src/bundle/tar-read.js';
import { CTP_LIMITS, LAYER_LIMITS } from '../../src/bundle/limits.js';
import { encodeHeader, END_OF_ARCHIVE } from '../../src/bundle/tar-write.js';
import { CtError } from '../../src/core/errors.js';
import { repoRoot } from '../support/cli.js';

let tmp: string;
let good: Buffer;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'ct-decompress-'));
  await packCtp({ from: { dir: join(repoRoot, 'examples', 'hello') }, out: join(tmp, 'h.ctp') });
  good = await readFile(join(tmp, 'h.ctp'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function failure(p: Promise<unknown>): Promise<CtError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof CtError) return e;
    throw e;
  }
  throw new Error('accepted');
}

/** `head`, then zero bytes for ever (pull-based: only what is read is made); counts what was read. */
function endless(head: Buffer, counter: { bytes: number }): Readable {
  return Readable.from(
    (async function* () {
      counter.bytes += head.length;
      yield head;
      const zeros = Buffer.alloc(1 << 20);
      for (;;) {
        counter.bytes += zeros.length;
        yield zeros;
      }
    })(),
  );
}

const MiB = 1024 * 1024;

describe('compression ratio', () => {
  it('a 100 MiB run of zeros in ~100 KiB of gzip is COMPRESSION_RATIO_EXCEEDED after at most the floor plus a chunk of output', async () => {
    const size = 100 * MiB;
    const tar = Buffer.concat([encodeHeader({ name: `oci-layout/blobs/sha256/${'a'.repeat(64)}`, type: 'File', size, mode: 0o644, mtime: 0 }), Buffer.alloc(size), END_OF_ARCHIVE]);
    const bomb = gzipSync(tar, { level: 1 });
    expect(bomb.length).toBeLessThan(size / 200);
    const e = await failure(openCtp(bomb));
    expect(e.code).toBe('COMPRESSION_RATIO_EXCEEDED');
    expect(e.details).toMatchObject({ limit: 'maxRatio', max: CTP_LIMITS.maxRatio });
    expect(e.details.uncompressed as number).toBeLessThanOrEqual(CTP_LIMITS.ratioFloorBytes + 2 * MiB);
  });

  it('the ratio and its floor are configurable per call', async () => {
    const tar = Buffer.concat([encodeHeader({ name: 'zeros', type: 'File', size: MiB, mode: 0o644, mtime: 0 }), Buffer.alloc(MiB), END_OF_ARCHIVE]);
    const gz = gzipSync(tar);
    const read = (limits: typeof CTP_LIMITS) => readTar(Readable.from([gz]), { limits, where: 'zeros', onEntry: () => undefined });
    await expect(read(CTP_LIMITS)).resolves.toMatchObject({ compressed: true });
    expect((await failure(read({ ...CTP_LIMITS, ratioFloorBytes: 64 * 1024 }))).code).toBe('COMPRESSION_RATIO_EXCEEDED');
    await expect(read({ ...CTP_LIMITS, ratioFloorBytes: 64 * 1024, maxRatio: 2000 })).resolves.toMatchObject({ compressed: true });
  });
});

describe('trailing data', () => {
  it('zeros after the gzip member, for ever: TRAILING_DATA without reading them all', async () => {
    const read = { bytes: 0 };
    const e = await failure(readTar(endless(gzipSync(good), read), { limits: CTP_LIMITS, where: 'endless', onEntry: () => undefined }));
    expect(e.code).toBe('TRAILING_DATA');
    expect(e.details.part).toBe('gzip');
    expect(read.bytes).toBeLessThan(16 * MiB);
  });

  it('zeros after the tar end inside the gzip stream, for ever: TRAILING_DATA after the record padding', async () => {
    const read = { bytes: 0 };
    const gz = endless(good, read).pipe(createGzip({ level: 1, flush: constants.Z_NO_FLUSH }));
    const e = await failure(readTar(gz, { limits: CTP_LIMITS, where: 'endless-tar', onEntry: () => undefined }));
    expect(e.code).toBe('TRAILING_DATA');
    expect(e.details.part).toBe('tar');
    gz.destroy();
    expect(read.bytes).toBeLessThan(64 * MiB);
  });

  it('a second gzip member (even an empty one) is TRAILING_DATA; garbage too; a bad trailer is GZIP_MALFORMED', async () => {
    expect((await failure(openCtp(Buffer.concat([gzipSync(good), gzipSync(Buffer.alloc(0))])))).code).toBe('TRAILING_DATA');
    expect((await failure(openCtp(Buffer.concat([gzipSync(good), Buffer.from([0])])))).code).toBe('TRAILING_DATA');
    const crc = Buffer.from(gzipSync(good));
    crc[crc.length - 6] ^= 1;
    expect((await failure(openCtp(crc))).code).toBe('GZIP_MALFORMED');
    const isize = Buffer.from(gzipSync(good));
    isize[isize.length - 2] ^= 1;
    expect((await failure(openCtp(isize))).code).toBe('GZIP_MALFORMED');
    expect((await failure(openCtp(gzipSync(good).subarray(0, -4)))).code).toBe('GZIP_MALFORMED');
  });

  it('a gzip header with name and comment fields is read; the member still ends where it should', async () => {
    const z = Buffer.from(gzipSync(good));
    const withName = Buffer.concat([z.subarray(0, 3), Buffer.from([z[3] | 8 | 16]), z.subarray(4, 10), Buffer.from('name\0comment\0'), z.subarray(10)]);
    await expect(openCtp(withName)).resolves.toBeDefined();
  });
});

describe('entries over all layers', () => {
  it('the layer entry limit counts every layer together and refuses before the rootfs exists', async () => {
    const a = await openCtp(good);
    const out = join(tmp, 'rootfs');
    const e = await failure(applyLayers(a, out, { limits: { maxEntries: 1 } }));
    expect(e).toMatchObject({ code: 'TAR_LIMIT_EXCEEDED', details: { limit: 'maxEntries' } });
    await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(LAYER_LIMITS.maxEntries).toBe(250_000);
  });

  it('the total unpacked size counts every layer together and is refused before the bytes are written (no rootfs left)', async () => {
    const a = await openCtp(good);
    const out = join(tmp, 'rootfs-bytes');
    const e = await failure(applyLayers(a, out, { limits: { maxTotalBytes: 64 * 1024 } }));
    expect(e).toMatchObject({ code: 'TAR_LIMIT_EXCEEDED', details: { limit: 'maxTotalBytes' } });
    await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' });
    // The same bundle within the default limits unpacks.
    await applyLayers(await openCtp(good), join(tmp, 'rootfs-ok'));
    expect((await stat(join(tmp, 'rootfs-ok', 'bin', 'busybox'))).isFile()).toBe(true);
  });
});
