import { createHash } from 'node:crypto';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Parser, type ReadEntry } from 'tar';
import { CtError, asIoError } from '../core/errors.js';
import type { TarLimits } from './limits.js';
import { TarWalker } from './tar-walk.js';
import { GzipMember } from './gzip-member.js';

export type TarEntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'chardev' | 'blockdev' | 'fifo';

/** One entry as the parser decoded it, with its place in the uncompressed stream. */
export interface TarEntry {
  /** The name exactly as stored (pax or GNU long names applied); callers validate it. */
  rawName: string;
  type: TarEntryType;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  linkpath?: string;
  mtime?: Date;
  offset: number;
  dataOffset: number;
}

/** Receives an entry's body synchronously, in order; throwing aborts the whole read. */
export interface BodySink {
  data(chunk: Buffer): void;
  end(): void;
}

export interface ReadTarOptions {
  limits: TarLimits;
  /** Names the archive in messages (file path, or `layer sha256:…`). */
  where: string;
  onEntry(entry: TarEntry): BodySink | void;
}

export interface ReadTarResult {
  compressed: boolean;
  /** `sha256:` digest and size of the input bytes as given (compressed if it was). */
  digest: string;
  size: number;
  /** Uncompressed tar bytes, trailing zero blocks included. */
  tarBytes: number;
  entries: number;
}

const FEED_SLICE = 256 * 1024;

const TYPES: Record<string, TarEntryType> = {
  File: 'file',
  OldFile: 'file',
  ContiguousFile: 'file',
  Directory: 'directory',
  SymbolicLink: 'symlink',
  Link: 'hardlink',
  CharacterDevice: 'chardev',
  BlockDevice: 'blockdev',
  FIFO: 'fifo',
};

/**
 * Reads a tar stream, gzip-compressed or not (decided by the magic bytes `1f 8b` only), in one
 * pass: hashes the input as given, decompresses, checks the block structure and limits, and hands
 * every entry and its body to `onEntry` synchronously. Synchronous sinks keep entries strictly
 * ordered (a later entry never overtakes an earlier one's side effects) and make backpressure
 * trivial: the parser never holds more than the chunk in hand.
 */
export async function readTar(input: Readable, opts: ReadTarOptions): Promise<ReadTarResult> {
  const { where } = opts;
  const walker = new TarWalker(opts.limits, where);
  const parser = new Parser({ strict: true, zstd: false, brotli: false });
  let failure: unknown;
  let open = 0;
  const fail = (e: unknown): void => {
    failure ??= e;
  };
  const malformed = (msg: string, offset?: number): CtError =>
    new CtError('TAR_MALFORMED', `${where}: ${msg}`, { where, ...(offset === undefined ? {} : { offset }) });

  parser.on('error', (e: Error) => fail(malformed(`invalid tar: ${e.message} (near offset ${walker.pos})`, walker.pos)));
  parser.on('ignoredEntry', (e: ReadEntry) => {
    const h = walker.shiftHeader();
    fail(malformed(`unsupported entry type ${e.type} for ${JSON.stringify(e.path)} at offset ${h?.offset ?? '?'}`, h?.offset));
  });
  parser.on('entry', (e: ReadEntry) => {
    if (failure) return void e.resume();
    try {
      const h = walker.shiftHeader();
      if (!h || h.size !== e.size) throw malformed(`inconsistent entry size for ${JSON.stringify(e.path)} at offset ${h?.offset ?? '?'}`, h?.offset);
      const type = TYPES[e.type];
      if (!type) throw malformed(`unsupported entry type ${e.type} for ${JSON.stringify(e.path)} at offset ${h.offset}`, h.offset);
      const sink = opts.onEntry({
        rawName: e.path,
        type,
        size: e.size,
        mode: e.mode ?? 0,
        uid: e.uid ?? 0,
        gid: e.gid ?? 0,
        linkpath: e.linkpath,
        mtime: e.mtime,
        offset: h.offset,
        dataOffset: h.dataOffset,
      });
      open++;
      e.on('data', (c: Buffer) => {
        if (failure || !sink) return;
        try {
          sink.data(c);
        } catch (err) {
          fail(err);
        }
      });
      e.on('end', () => {
        open--;
        if (failure || !sink) return;
        try {
          sink.end();
        } catch (err) {
          fail(err);
        }
      });
    } catch (err) {
      fail(err);
      e.resume();
    }
  });
  // Decompressed bytes per compressed byte read so far: checked before a chunk is looked at, so a
  // gzip bomb is refused after at most RATIO_FLOOR + one chunk of output, whatever it would expand to.
  const compressedRef = { value: false };
  const checkRatio = (out: number): void => {
    if (out > opts.limits.ratioFloorBytes && out > opts.limits.maxRatio * Math.max(size, 1)) {
      throw new CtError('COMPRESSION_RATIO_EXCEEDED', `${where}: ${out} bytes decompressed from ${size} compressed bytes: ratio over ${opts.limits.maxRatio}`, {
        where,
        limit: 'maxRatio',
        max: opts.limits.maxRatio,
        compressed: size,
        uncompressed: out,
      });
    }
  };
  const parserEnded = new Promise<void>((resolve) => parser.on('end', () => resolve()));

  const sink = new Writable({
    highWaterMark: 1 << 20,
    write(chunk: Buffer, _enc, cb) {
      try {
        if (compressedRef.value) checkRatio(walker.pos + chunk.length);
        // Bounded slices: the walker and the parser then never run far ahead of each other.
        for (let i = 0; i < chunk.length && !failure; i += FEED_SLICE) {
          const part = walker.feed(i === 0 && chunk.length <= FEED_SLICE ? chunk : chunk.subarray(i, i + FEED_SLICE));
          if (part.length > 0) parser.write(part);
        }
        cb(failure as Error | undefined);
      } catch (e) {
        cb(e as Error);
      }
    },
    final(cb) {
      try {
        walker.finish();
      } catch (e) {
        return cb(e as Error);
      }
      parser.end();
      parserEnded.then(() => {
        if (!failure && open !== 0) fail(malformed('archive ended inside an entry'));
        cb(failure as Error | undefined);
      }, cb);
    },
  });

  // Peek at the first bytes to decide on gzip; everything else flows through one pipeline.
  const it = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let head = Buffer.alloc(0);
  try {
    while (head.length < 2) {
      const r = await it.next();
      if (r.done) break;
      head = head.length ? Buffer.concat([head, r.value]) : Buffer.from(r.value);
    }
  } catch (e) {
    throw asIoError(e, where);
  }
  const compressed = head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
  compressedRef.value = compressed;
  const hash = createHash('sha256');
  let size = 0;
  const tap = new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
  });
  const rest = Readable.from(
    (async function* () {
      if (head.length) yield head;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield r.value;
      }
    })(),
    { objectMode: false, highWaterMark: 1 << 20 },
  );
  let gzipError: Error | undefined;
  const member = compressed ? new GzipMember(where) : undefined;
  member?.inflate.on('error', (e) => (gzipError ??= e));
  try {
    if (member) {
      // Two pipelines joined by the inflater: compressed bytes in, tar bytes out. Whichever fails
      // first stops the other, and both have settled before anything is reported.
      const results = await Promise.allSettled([
        pipeline(rest, tap, member.input).catch((e: unknown) => {
          member.inflate.destroy(e as Error);
          throw e;
        }),
        pipeline(member.inflate, member.output, sink).catch((e: unknown) => {
          member.input.destroy(e as Error);
          rest.destroy();
          throw e;
        }),
      ]);
      const bad = results.find((r): r is PromiseRejectedResult => r.status === 'rejected' && r.reason instanceof CtError) ?? results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (bad) throw bad.reason;
      if (!failure) member.check();
    } else await pipeline(rest, tap, sink);
  } catch (e) {
    if (failure instanceof CtError) throw failure;
    if (e instanceof CtError) throw e;
    if (gzipError && (e === gzipError || !(e as NodeJS.ErrnoException).syscall)) {
      throw new CtError('GZIP_MALFORMED', `${where}: invalid gzip data (${gzipError.message}) after ${size} compressed bytes`, { where, offset: size }, { cause: e });
    }
    throw asIoError(e, where);
  }
  if (failure) throw failure;
  return { compressed, digest: `sha256:${hash.digest('hex')}`, size, tarBytes: walker.pos, entries: walker.entries };
}
