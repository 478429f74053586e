/**
 * Tar bytes that no entry accounts for must be zero. Without this check the padding that rounds
 * each file up to 512 bytes could change while every digest still matched, and the same "signed"
 * bundle would exist in many spellings (the seeded fuzz test in test/verify/fuzz.test.ts found
 * exactly that). The archive reader (src/bundle/tar-walk.ts) now rejects non-zero padding as it
 * reads; this check stays as a second line of defence: it reads the bytes again from the source
 * the archive was opened from, so a reader change or an archive object built another way cannot
 * let padding through unnoticed. Uncompressed archives (the default) are checked with positional
 * reads of the padding only; compressed ones with one streaming pass.
 */
import { open } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { Readable } from 'node:stream';
import { CtError, asIoError } from '../../core/errors.js';
import type { CtpArchive } from '../../bundle/archive.js';

interface Range {
  name: string;
  start: number;
  end: number;
}

function paddingRanges(archive: CtpArchive): Range[] {
  const out: Range[] = [];
  for (const [name, e] of archive.entries) {
    const start = e.dataOffset + e.size;
    const end = Math.ceil(start / 512) * 512;
    if (end > start) out.push({ name, start, end });
  }
  return out.sort((a, b) => a.start - b.start);
}

function fail(r: Range, at: number): never {
  throw new CtError('TAR_MALFORMED', `non-zero padding after ${r.name} at offset ${at} of the tar stream`, { name: r.name, offset: at });
}

function checkSlice(r: Range, bytes: Buffer, base: number): void {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) fail(r, base + i);
}

export async function checkTarPadding(archive: CtpArchive): Promise<void> {
  const ranges = paddingRanges(archive);
  if (ranges.length === 0) return;
  const src = archive.source;
  if (!archive.compressed) {
    if ('buffer' in src) {
      for (const r of ranges) checkSlice(r, src.buffer.subarray(r.start, r.end), r.start);
      return;
    }
    let fh;
    try {
      fh = await open(src.path, 'r');
      const buf = Buffer.alloc(512);
      for (const r of ranges) {
        const { bytesRead } = await fh.read(buf, 0, r.end - r.start, r.start);
        checkSlice(r, buf.subarray(0, bytesRead), r.start);
      }
    } catch (e) {
      throw asIoError(e, src.path);
    } finally {
      await fh?.close();
    }
    return;
  }
  // Compressed: one pass over the decompressed stream, looking only at the padding ranges.
  const raw = 'buffer' in src ? Readable.from([src.buffer]) : createReadStream(src.path, { highWaterMark: 1 << 20 });
  let pos = 0;
  let k = 0;
  const gunzip = raw.pipe(createGunzip());
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      const chunkEnd = pos + chunk.length;
      while (k < ranges.length && ranges[k].start < chunkEnd) {
        const r = ranges[k];
        const from = Math.max(r.start, pos);
        const to = Math.min(r.end, chunkEnd);
        checkSlice(r, chunk.subarray(from - pos, to - pos), from);
        if (r.end <= chunkEnd) k++;
        else break;
      }
      pos = chunkEnd;
      if (k >= ranges.length) break;
    }
  } catch (e) {
    if (e instanceof CtError) throw e;
    throw new CtError('GZIP_MALFORMED', `cannot decompress the bundle again: ${(e as Error).message}`, {});
  } finally {
    raw.destroy();
    gunzip.destroy();
  }
}
