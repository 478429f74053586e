import { Transform, Writable, type TransformCallback } from 'node:stream';
import { createInflateRaw, crc32, type InflateRaw } from 'node:zlib';
import { CtError } from '../core/errors.js';

/** Longest gzip header accepted (optional name, comment and extra field included). */
const MAX_GZIP_HEADER = 64 * 1024;
const FHCRC = 2;
const FEXTRA = 4;
const FNAME = 8;
const FCOMMENT = 16;

/**
 * Reads exactly ONE gzip member and refuses anything after it (TRAILING_DATA), as soon as it
 * arrives rather than after reading it all. zlib's gunzip silently skips trailing zeros and goes on
 * into further members, so a signed bundle could carry gigabytes after its gzip stream that are
 * read, hashed and decompressed before anything is decided; every writer this project knows of
 * (ct pack, pigz, Go's compress/gzip, docker, containerd) writes one member.
 *
 * `input` (a Writable) parses the header and writes the deflate body into zlib's raw inflater,
 * waiting for each chunk to be processed (so backpressure is the inflater's, and `bytesWritten`,
 * the bytes it consumed, is exact after every chunk): the inflater stops consuming at the end of
 * the deflate stream. `output` (inflater → CRC-32 and size) is read by the caller; `check()`
 * compares the 8-byte trailer with them at the end.
 */
export class GzipMember {
  readonly inflate: InflateRaw;
  readonly input: Writable;
  readonly output: Transform;
  private header: Buffer[] = [];
  private headerLen = 0;
  private inBody = false;
  /** Bytes handed to the inflater, and the last few chunks of them (for the trailer). */
  private passed = 0;
  private recent: { at: number; buf: Buffer }[] = [];
  private crc = 0;
  private isize = 0;

  constructor(private readonly where: string) {
    this.inflate = createInflateRaw({ chunkSize: 256 * 1024 });
    this.input = new Writable({
      highWaterMark: 1 << 20,
      write: (chunk: Buffer, _enc, cb: (e?: Error | null) => void) => {
        try {
          const body = this.inBody ? chunk : this.takeHeader(chunk);
          if (body.length === 0) return cb();
          this.checkTrailing(body.length);
          this.recent.push({ at: this.passed, buf: body });
          if (this.recent.length > 4) this.recent.shift();
          this.passed += body.length;
          this.inflate.write(body, (err) => cb(err));
        } catch (e) {
          cb(e as Error);
        }
      },
      final: (cb) => {
        this.inflate.end();
        cb();
      },
    });
    this.output = new Transform({
      highWaterMark: 1 << 20,
      transform: (chunk: Buffer, _enc, cb: TransformCallback) => {
        this.crc = crc32(chunk, this.crc);
        this.isize = (this.isize + chunk.length) % 0x100000000;
        cb(null, chunk);
      },
    });
  }

  /**
   * Called before more body bytes go to the inflater. Every byte given so far has been processed;
   * if some were not consumed, the deflate stream has ended there and only the 8-byte trailer may follow.
   */
  private checkTrailing(more: number): void {
    const after = this.passed - this.inflate.bytesWritten;
    if (after > 0 && after + more > 8) this.trailing(this.inflate.bytesWritten + 8);
  }

  private trailing(at: number): never {
    throw new CtError('TRAILING_DATA', `${this.where}: data after the end of the gzip stream (at compressed body offset ${at}); one gzip member and nothing after it`, { where: this.where, offset: at, part: 'gzip' });
  }

  private takeHeader(chunk: Buffer): Buffer {
    this.header.push(chunk);
    this.headerLen += chunk.length;
    const h = this.header.length === 1 ? chunk : Buffer.concat(this.header, this.headerLen);
    const end = gzipHeaderEnd(h, this.where);
    if (end === undefined) {
      if (this.headerLen > MAX_GZIP_HEADER) throw new CtError('GZIP_MALFORMED', `${this.where}: gzip header longer than ${MAX_GZIP_HEADER} bytes`, { where: this.where });
      return Buffer.alloc(0);
    }
    this.inBody = true;
    this.header = [];
    return h.subarray(end);
  }

  /** After the pipeline ended: the member was complete, its trailer matches, nothing followed it. */
  check(): void {
    const consumed = this.inflate.bytesWritten;
    const after = this.passed - consumed;
    if (!this.inBody || after < 8) {
      throw new CtError('GZIP_MALFORMED', `${this.where}: gzip stream truncated (no complete trailer)`, { where: this.where });
    }
    if (after > 8) this.trailing(consumed + 8);
    const trailer = Buffer.alloc(8);
    for (const r of this.recent) {
      for (let k = 0; k < 8; k++) {
        const pos = consumed + k - r.at;
        if (pos >= 0 && pos < r.buf.length) trailer[k] = r.buf[pos];
      }
    }
    if (trailer.readUInt32LE(0) !== this.crc >>> 0 || trailer.readUInt32LE(4) !== this.isize) {
      throw new CtError('GZIP_MALFORMED', `${this.where}: gzip trailer does not match the data (CRC-32 or size)`, { where: this.where });
    }
  }
}

/** Offset where the deflate body starts, or undefined while the header is incomplete. */
function gzipHeaderEnd(h: Buffer, where: string): number | undefined {
  if (h.length < 10) return undefined;
  if (h[0] !== 0x1f || h[1] !== 0x8b || h[2] !== 8 || (h[3] & 0xe0) !== 0) {
    throw new CtError('GZIP_MALFORMED', `${where}: not a gzip member header (deflate, no reserved flags)`, { where });
  }
  const flg = h[3];
  let p = 10;
  if (flg & FEXTRA) {
    if (h.length < p + 2) return undefined;
    p += 2 + h.readUInt16LE(p);
  }
  for (const f of [FNAME, FCOMMENT]) {
    if (flg & f) {
      const z = h.indexOf(0, p);
      if (z === -1) return undefined;
      p = z + 1;
    }
  }
  if (flg & FHCRC) p += 2;
  return h.length >= p ? p : undefined;
}
