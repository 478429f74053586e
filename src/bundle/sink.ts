import { createHash } from 'node:crypto';
import { createWriteStream, openSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { once } from 'node:events';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createHash as hashFn } from 'node:crypto';
import { CtError, asIoError } from '../core/errors.js';
import { placeOutput, tempPathFor } from '../core/fs.js';
import { BlockGzip } from './gzip.js';

/** stream.pipeline over a computed list of stages (its typings want a literal argument list). */
export function runPipeline(stages: NodeJS.ReadableStream[] | (NodeJS.ReadableStream | NodeJS.WritableStream)[]): Promise<void> {
  return (pipeline as unknown as (s: unknown[]) => Promise<void>)(stages);
}

/**
 * A file being written through an optional deterministic gzip, hashed as the bytes go to disk
 * (no second read), into a temporary file that is renamed over the target only on commit().
 * Also hashes the uncompressed bytes when asked (layer diff_ids).
 */
export class HashingFileSink {
  private readonly head = new PassThrough({ highWaterMark: 1 << 20 });
  private readonly done: Promise<void>;
  private readonly outHash = createHash('sha256');
  private readonly inHash = createHash('sha256');
  private failed: unknown;
  readonly tmp: string;
  bytesIn = 0;
  bytesOut = 0;

  /**
   * The temporary is made synchronously with O_EXCL (`wx`: a link or file already there is refused,
   * never followed) and written through that descriptor only: reopened by name, a symlink put in
   * its place by another user who can write the directory meanwhile was followed and its target
   * written (a review's victim file). `temps`: a set a signal handler unlinks (src/cli/interrupt.ts);
   * the name is entered before the file exists, so a handler running between JavaScript tasks never
   * misses it. It leaves the set once renamed or removed.
   * `replace: false`: commit() refuses (IO_ERROR) a file that appeared at the target meanwhile
   * instead of replacing it (placeOutput).
   */
  constructor(readonly target: string, private readonly opts: { gzip: boolean; gzipLevel?: number; durable?: boolean; temps?: Set<string>; replace?: boolean }) {
    this.tmp = tempPathFor(target);
    opts.temps?.add(this.tmp);
    let fd: number;
    try {
      fd = openSync(this.tmp, 'wx', 0o644);
    } catch (e) {
      opts.temps?.delete(this.tmp);
      throw asIoError(e, target);
    }
    const tap = new Transform({
      highWaterMark: 1 << 20,
      transform: (chunk: Buffer, _enc, cb) => {
        this.outHash.update(chunk);
        this.bytesOut += chunk.length;
        cb(null, chunk);
      },
    });
    // flush: fsync on the same descriptor before it is closed (unless `durable: false`, for scratch
    // files), not on a file opened again by name.
    const file = createWriteStream(this.tmp, { fd, flush: opts.durable !== false, highWaterMark: 1 << 20 });
    this.done = runPipeline([this.head, tap, file]);
    this.done.catch((e) => (this.failed ??= e));
    if (opts.gzip) this.gzip = new BlockGzip((b) => this.push(b), opts.gzipLevel);
  }

  private readonly gzip: BlockGzip | undefined;

  async write(buf: Buffer): Promise<void> {
    if (this.failed) throw asIoError(this.failed, this.target);
    this.inHash.update(buf);
    this.bytesIn += buf.length;
    if (this.gzip) await this.gzip.write(buf);
    else await this.push(buf);
  }

  /** Bytes as they go to the file (compressed if gzip), with backpressure. */
  private async push(buf: Buffer): Promise<void> {
    if (this.failed) throw asIoError(this.failed, this.target);
    if (!this.head.write(buf)) {
      await Promise.race([once(this.head, 'drain'), this.done]).catch((e) => {
        throw asIoError(e, this.target);
      });
      if (this.failed) throw asIoError(this.failed, this.target);
    }
  }

  /** Copies a stream in, counting and hashing it; checks the expected size and digest if given. */
  async copyFrom(src: Readable, what: string, expect: { size: number; sha256?: string }): Promise<void> {
    const h = expect.sha256 ? hashFn('sha256') : undefined;
    let n = 0;
    try {
      for await (const chunk of src as AsyncIterable<Buffer>) {
        n += chunk.length;
        if (n > expect.size) break;
        h?.update(chunk);
        await this.write(chunk);
      }
    } catch (e) {
      src.destroy();
      throw asIoError(e, what);
    }
    if (n !== expect.size) {
      src.destroy();
      throw new CtError('IO_ERROR', `${what}: expected ${expect.size} bytes, read ${n > expect.size ? 'more' : n} (changed while being copied?)`, { path: what });
    }
    if (h && expect.sha256 && h.digest('hex') !== expect.sha256) {
      throw new CtError('DIGEST_MISMATCH', `${what}: content does not match sha256:${expect.sha256}`, { path: what, expected: `sha256:${expect.sha256}` });
    }
  }

  /** Ends the stream, fsyncs (unless `durable: false`, for scratch files) and renames into place. Returns digests of the written bytes. */
  async commit(): Promise<{ digest: string; size: number; uncompressedDigest: string; uncompressedSize: number }> {
    try {
      if (this.gzip) await this.gzip.end();
      this.head.end();
      await this.done;
      await placeOutput(this.tmp, this.target, this.opts.replace !== false);
      this.opts.temps?.delete(this.tmp);
    } catch (e) {
      await this.abort();
      throw asIoError(e, this.target);
    }
    return {
      digest: `sha256:${this.outHash.digest('hex')}`,
      size: this.bytesOut,
      uncompressedDigest: `sha256:${this.inHash.digest('hex')}`,
      uncompressedSize: this.bytesIn,
    };
  }

  async abort(): Promise<void> {
    this.head.destroy();
    await this.done.catch(() => undefined);
    await rm(this.tmp, { force: true });
    this.opts.temps?.delete(this.tmp);
  }
}
