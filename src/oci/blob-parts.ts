import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FileHandle } from 'node:fs/promises';
import { CtError } from '../core/errors.js';
import type { RegistryClient } from './client.js';
import { release, retain } from './slabs.js';

/**
 * Downloading the blobs of `ct fetch` in parts, in file order. The tar digest the recipe pins is
 * one sequential sha256 over the whole file, so it can only follow the frontier of contiguous
 * bytes on disk. Downloading whole blobs at once (4 × 64 MiB side by side) left that frontier at
 * the first blob until all four had landed, then hashed the other 192 MiB after the network was
 * idle. Cut into ranges requested in order, several at a time, the bytes land roughly in order
 * and the hash keeps up with them: when the last range lands only it is left to hash.
 *
 * A registry that ignores `Range` (answers 200 with the whole blob) is detected on the first
 * ranged request, made alone; from then on every blob is downloaded whole, by one request. Each
 * byte of the file is written by exactly one request, so what is hashed is what stays on disk.
 */

/** Default size of one ranged request (a blob at most this big is fetched by one plain GET). */
export const PART_BYTES = 8 * 1024 * 1024;

/**
 * A registry that answers within `NEAR_MS` is on loopback, a LAN or in the same region: one TCP
 * stream fills the link (a 6 MB window, Linux's default largest, carries 4.8 Gbit/s at 10 ms), so
 * more streams only add work, and on loopback the registry shares this machine's CPUs. Each GET costs docker-registry
 * ~5 ms of CPU (measured: 32 ranged requests for 256 MiB took it 390-450 ms, 4 whole-blob ones
 * 220-270 ms). There blobs are fetched whole (ranges only past `NEAR_PART_BYTES`), each starting
 * when the hash is within `NEAR_LOOKAHEAD_BYTES` of it: in file order, the next request issued
 * while the previous one's last bytes arrive. A farther registry gets 8 MiB ranges, `concurrency`
 * at once, with no look-ahead bound (the memory bound of ChunkBudget still holds).
 */
export const NEAR_MS = 10;
export const NEAR_PART_BYTES = 64 * 1024 * 1024;
export const NEAR_LOOKAHEAD_BYTES = 4 * 1024 * 1024;

export interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (e: unknown) => void;
}

export function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Bytes received but not yet hashed, shared by every part of one fetch. The in-order tar hash
 * takes a part's bytes from memory (no second read of the file); parts that land ahead of it
 * wait here, at most `max` bytes in all. A part that would go past the bound drops what it holds
 * and is read back from the file when the hash reaches it (a registry ignoring Range sends whole
 * blobs side by side: they would otherwise all sit in memory).
 */
export class ChunkBudget {
  /** Bytes of memory the kept buffers pin: each distinct backing store once, whole. */
  held = 0;
  private readonly pins = new Map<ArrayBufferLike, number>();
  constructor(readonly max: number) {}

  /**
   * What keeping `chunks` would add. A buffer pins its whole backing store, and a view of a
   * receive slab (slabs.ts) pins 1 MiB however few of its bytes it holds: counting bytes held
   * let a registry answering one-byte blobs on fresh connections pin a slab per byte.
   */
  costOf(chunks: Buffer[]): number {
    let cost = 0;
    const seen = new Set<ArrayBufferLike>();
    for (const c of chunks) {
      if (this.pins.has(c.buffer) || seen.has(c.buffer)) continue;
      seen.add(c.buffer);
      cost += c.buffer.byteLength;
    }
    return cost;
  }

  keep(chunks: Buffer[]): void {
    for (const c of chunks) {
      const n = this.pins.get(c.buffer) ?? 0;
      if (n === 0) this.held += c.buffer.byteLength;
      this.pins.set(c.buffer, n + 1);
    }
  }

  unkeep(chunks: Buffer[]): void {
    for (const c of chunks) {
      const n = (this.pins.get(c.buffer) ?? 1) - 1;
      if (n > 0) this.pins.set(c.buffer, n);
      else if (this.pins.delete(c.buffer)) this.held -= c.buffer.byteLength;
    }
  }
}

/** Default bound on received bytes waiting for the hash (4 parts of 8 MiB in flight need ~24 MiB). */
export const HELD_BYTES = 64 * 1024 * 1024;

/**
 * One range of a blob and how much of it is on disk: `written` grows only after bytes are
 * written, `changed` resolves at the next write or at the end, `done` once it has all landed.
 * Until `take` hands them to the hash, the written bytes are also kept (the very buffers that
 * were written, so what is hashed is what is on disk), unless the budget ran out. Kept buffers
 * may be views of recycled receive slabs (src/oci/slabs.ts): the part holds a reference to each
 * until `take` hands it on (whoever takes releases) or it drops them.
 */
export class Part {
  written = 0;
  finished = false;
  readonly done = deferred();
  private wake: Deferred | undefined;
  private pending: Buffer[] = [];
  private keeping: boolean;

  constructor(readonly start: number, readonly size: number, private readonly budget?: ChunkBudget) {
    this.done.promise.catch(() => undefined); // observed by whoever waits for it; never unhandled
    this.keeping = budget !== undefined;
  }

  changed(): Promise<void> {
    return (this.wake ??= deferred()).promise;
  }

  /** `chunks` (n bytes in all) are on disk at the end of what was written so far. */
  advance(n: number, chunks: Buffer[]): void {
    this.written += n;
    if (this.keeping && this.budget) {
      if (this.budget.held + this.budget.costOf(chunks) > this.budget.max) this.drop();
      else {
        this.budget.keep(chunks);
        for (const c of chunks) {
          retain(c);
          this.pending.push(c);
        }
      }
    }
    this.signal();
  }

  /**
   * The bytes written since the previous call (in order), or undefined when they were not kept
   * and must be read from the file. Once undefined, always undefined. The caller releases each
   * buffer (slabs.ts `release`) once it has read it.
   */
  take(): Buffer[] | undefined {
    if (!this.keeping) return undefined;
    const out = this.pending;
    this.pending = [];
    this.budget!.unkeep(out);
    return out;
  }

  finish(): void {
    this.finished = true;
    this.signal();
  }

  private drop(): void {
    this.keeping = false;
    this.budget!.unkeep(this.pending);
    for (const c of this.pending) release(c);
    this.pending = [];
  }

  private signal(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.resolve();
  }
}

/**
 * How far the in-order tar hash has got, and the downloads waiting until it is near their place.
 * A request starts only when its first byte is within the look-ahead of the hash: bytes that land
 * far ahead of the hash are either held in memory or dropped and read back, and on a registry
 * that shares this machine's CPUs (loopback, the same host) every extra stream and request costs
 * both ends CPU that the in-order download does not need.
 */
export class Frontier {
  at = 0;
  private waiters: { pos: number; d: Deferred }[] = [];
  private failure: unknown;
  private failed = false;

  /** Resolves once the hash has reached `pos` (at once when it has). */
  reach(pos: number): Promise<void> {
    if (this.failed) return Promise.reject(this.failure);
    if (pos <= this.at) return Promise.resolve();
    const d = deferred();
    this.waiters.push({ pos, d });
    return d.promise;
  }

  advance(to: number): void {
    if (to <= this.at) return;
    this.at = to;
    const ready = this.waiters.filter((w) => w.pos <= to);
    if (ready.length === 0) return;
    this.waiters = this.waiters.filter((w) => w.pos > to);
    for (const w of ready) w.d.resolve();
  }

  /** Nothing waiting will start: the fetch failed or is over. */
  fail(e: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.failure = e;
    for (const w of this.waiters) w.d.reject(e);
    this.waiters = [];
  }
}

/** A blob to download to `at` in the file, cut into parts of at most `partBytes`. */
export class BlobDownload {
  readonly parts: Part[] = [];

  constructor(readonly digest: string, readonly size: number, readonly at: number, partBytes: number, budget?: ChunkBudget) {
    let start = 0;
    do {
      this.parts.push(new Part(start, Math.min(partBytes, size - start), budget));
      start += partBytes;
    } while (start < size);
  }
}

/** Whether the registry honours `Range`: settled by the first ranged request, which runs alone. */
export class RangeSupport {
  private answer: Promise<boolean> | undefined;

  /** Runs `probe` if nothing has asked yet; else waits for its answer. */
  async decide(probe: () => Promise<boolean>): Promise<{ ranged: boolean; prober: boolean }> {
    if (this.answer) return { ranged: await this.answer, prober: false };
    this.answer = probe();
    return { ranged: await this.answer, prober: true };
  }
}

/**
 * The job for one part. A single-part blob is one plain GET. Otherwise the part is asked for by
 * `Range`; if the registry answers with the whole blob instead, the job that got it writes every
 * part of that blob, and later jobs of a blob fetch it whole from their blob's first part (the
 * other parts' jobs then have nothing to do: their part lands with the first).
 */
export async function downloadPart(client: RegistryClient, blob: BlobDownload, index: number, fh: FileHandle, ranges: RangeSupport): Promise<void> {
  try {
    await fetchPart(client, blob, index, fh, ranges);
  } catch (e) {
    // Whoever waits for this blob's bytes learns at once (parts already landed stay landed).
    for (const p of blob.parts) p.done.reject(e);
    throw e;
  }
}

async function fetchPart(client: RegistryClient, blob: BlobDownload, index: number, fh: FileHandle, ranges: RangeSupport): Promise<void> {
  const part = blob.parts[index];
  if (blob.parts.length === 1) return writeStream(await client.openBlob(blob.digest), blob, blob.parts, fh);
  let body: Awaited<ReturnType<RegistryClient['openBlobRange']>> | undefined;
  const { ranged, prober } = await ranges.decide(async () => {
    body = await client.openBlobRange(blob.digest, part.start, part.size, blob.size);
    return body.ranged;
  });
  if (prober) {
    // The probe's answer is either this part or the whole blob.
    return writeStream(body!.stream, blob, body!.ranged ? [part] : blob.parts, fh);
  }
  if (ranged) {
    const r = await client.openBlobRange(blob.digest, part.start, part.size, blob.size);
    if (!r.ranged) {
      discard(r.stream);
      throw new CtError('REGISTRY_ERROR', `blob ${blob.digest}: the registry honoured Range once, then answered a range request with the whole blob`, { digest: blob.digest });
    }
    return writeStream(r.stream, blob, [part], fh);
  }
  // No ranges: the first part's job fetches the whole blob; the others' parts land with it.
  if (index === 0) return writeStream(await client.openBlob(blob.digest), blob, blob.parts, fh);
}

/**
 * Streams a body into consecutive `parts` of a blob: every byte written once at its offset, in
 * batches of chunks as they arrive, the length checked on the way, each part's `written` advanced
 * only after its bytes are on disk (so the hasher never reads ahead of them). Settles every part.
 */
async function writeStream(body: NodeJS.ReadableStream, blob: BlobDownload, parts: Part[], fh: FileHandle): Promise<void> {
  const first = parts[0].start;
  const total = parts.reduce((a, p) => a + p.size, 0);
  let n = 0;
  let current = 0;
  const tooLong = (): CtError => new CtError('DIGEST_MISMATCH', `blob ${blob.digest}: more bytes than the recipe says (${blob.size})`, { digest: blob.digest });
  const write = async (chunks: Buffer[]): Promise<void> => {
    const len = chunks.reduce((a, c) => a + c.length, 0);
    if (n + len > total) throw tooLong();
    for (let done = 0; done < len; ) {
      const { bytesWritten } = await fh.writev(done === 0 ? chunks : [Buffer.concat(chunks).subarray(done)], blob.at + first + n + done);
      done += bytesWritten;
    }
    n += len;
    // The written chunks, cut at part boundaries, go to their parts (for the in-order hash).
    let ci = 0;
    let co = 0;
    for (let left = len; left > 0; ) {
      const p = parts[current];
      const take = Math.min(left, p.size - p.written);
      const slices: Buffer[] = [];
      for (let need = take; need > 0; ) {
        const c = chunks[ci];
        const k = Math.min(need, c.length - co);
        if (k > 0) slices.push(co === 0 && k === c.length ? c : c.subarray(co, co + k));
        need -= k;
        co += k;
        if (co === c.length) {
          ci++;
          co = 0;
        }
      }
      p.advance(take, slices);
      left -= take;
      if (p.written === p.size) current++;
    }
    // This stream's reference to each received buffer (the parts took their own).
    for (const c of chunks) release(c);
  };
  const sink = new Writable({
    highWaterMark: 1 << 20,
    write: (c: Buffer, _e, cb) => void write([c]).then(() => cb(), cb),
    writev: (cs, cb) => void write(cs.map((c) => c.chunk as Buffer)).then(() => cb(), cb),
  });
  try {
    await pipeline(body, sink);
    if (n !== total) throw new CtError('DIGEST_MISMATCH', `blob ${blob.digest}: ${n} bytes from ${first}, the recipe says ${total}`, { digest: blob.digest });
    for (const p of parts) p.done.resolve();
  } catch (e) {
    for (const p of parts) p.done.reject(e);
    throw e;
  } finally {
    for (const p of parts) p.finish();
  }
}

/** Drops a body without reading it (the abort error it then emits is expected, not unhandled). */
export function discard(stream: Readable): void {
  stream.on('error', () => undefined);
  stream.destroy();
}

/** Copies an already landed range of the file to another offset (a blob repeated in the tar). */
export async function copyRange(fh: FileHandle, from: number, to: number, size: number): Promise<void> {
  const buf = Buffer.alloc(Math.min(size, 1 << 20));
  for (let done = 0; done < size; ) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - done), from + done);
    if (bytesRead === 0) throw new CtError('IO_ERROR', `short read at ${from + done}`, {});
    await fh.write(buf, 0, bytesRead, to + done);
    done += bytesRead;
  }
}
