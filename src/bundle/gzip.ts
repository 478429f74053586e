import { availableParallelism } from 'node:os';
import { Transform } from 'node:stream';
import { constants, crc32, createGzip, deflateRaw } from 'node:zlib';

/** Compression level of every gzip stream we write (the `gzip -6` default). */
export const GZIP_LEVEL = 6;

/** Uncompressed bytes per independently compressed block (fixed: block boundaries must not vary). */
export const GZIP_BLOCK = 1024 * 1024;

/** OS byte of the gzip header: 255 "unknown", as Go's compress/gzip (docker, containerd) writes. */
const GZIP_OS_UNKNOWN = 0xff;

function deflateBlock(data: Buffer, level: number, last: boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    deflateRaw(data, { level, finishFlush: last ? constants.Z_FINISH : constants.Z_SYNC_FLUSH }, (err, out) => (err ? reject(err) : resolve(out)));
  });
}

/**
 * A deterministic, parallel gzip writer producing ONE standard gzip member, the way pigz does:
 * the input is cut into fixed 1 MiB blocks (boundaries depend only on byte offsets), each block is
 * deflated on the libuv thread pool, every block but the last ends with a sync flush (so the raw
 * deflate streams concatenate into one valid stream), and the CRC-32 is computed over the input as
 * it arrives. Header: no name, mtime 0, OS 255 — nothing that varies by machine or time. Any gzip
 * reader reads it; it compresses a little less than one long stream (no dictionary across blocks)
 * and about as many times faster as there are cores.
 *
 * zlib's stream API compresses one stream on one thread; at 256 MiB that is the whole cost of
 * `ct pack`, so this is written by hand on top of zlib's one-shot deflateRaw and crc32.
 */
export class BlockGzip {
  private parts: Buffer[] = [];
  private partsLen = 0;
  private readonly inflight: Promise<Buffer>[] = [];
  private crc = 0;
  private size = 0;
  private started = false;
  private readonly parallel: number;

  constructor(private readonly emit: (b: Buffer) => Promise<void>, private readonly level = GZIP_LEVEL) {
    this.parallel = Math.min(4, Math.max(2, availableParallelism()));
  }

  async write(buf: Buffer): Promise<void> {
    if (!this.started) await this.header();
    this.crc = crc32(buf, this.crc);
    this.size += buf.length;
    let off = 0;
    while (off < buf.length) {
      const n = Math.min(GZIP_BLOCK - this.partsLen, buf.length - off);
      // Copy: callers may reuse their buffers once write() returns.
      this.parts.push(Buffer.from(buf.subarray(off, off + n)));
      this.partsLen += n;
      off += n;
      if (this.partsLen === GZIP_BLOCK) await this.submit(false);
    }
  }

  async end(): Promise<void> {
    if (!this.started) await this.header();
    await this.submit(true);
    while (this.inflight.length > 0) await this.emit(await this.inflight.shift()!);
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(this.crc >>> 0, 0);
    trailer.writeUInt32LE(this.size % 0x100000000, 4);
    await this.emit(trailer);
  }

  private async header(): Promise<void> {
    this.started = true;
    const xfl = this.level === 9 ? 2 : this.level === 1 ? 4 : 0;
    await this.emit(Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, GZIP_OS_UNKNOWN]));
  }

  private async submit(last: boolean): Promise<void> {
    const block = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.partsLen);
    this.parts = [];
    this.partsLen = 0;
    const p = deflateBlock(block, this.level, last);
    p.catch(() => undefined); // observed when shifted; avoid an unhandled rejection meanwhile
    this.inflight.push(p);
    while (this.inflight.length >= this.parallel) await this.emit(await this.inflight.shift()!);
  }
}

/**
 * A streaming single-threaded variant (used where a Transform is handier than a writer, e.g.
 * src/oci): zlib never writes a file name and Node passes mtime 0; the only platform-dependent
 * header byte (OS, offset 9) is fixed here. Returns two pipeline stages: compressor, header fixer.
 */
export function deterministicGzip(level = GZIP_LEVEL): [Transform, Transform] {
  const gz = createGzip({ level, chunkSize: 256 * 1024 });
  let seen = 0;
  const fix = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (seen <= 9 && seen + chunk.length > 9) {
        chunk = Buffer.from(chunk);
        chunk[9 - seen] = GZIP_OS_UNKNOWN;
        for (let k = 4; k <= 7; k++) if (k >= seen && k - seen < chunk.length) chunk[k - seen] = 0;
      }
      seen += chunk.length;
      cb(null, chunk);
    },
  });
  return [gz, fix];
}
