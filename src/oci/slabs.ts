/**
 * Receive buffers for registry answers, recycled. Node allocates a fresh 64 KiB buffer for every
 * socket read; for a 256 MiB `ct fetch` that is ~4,000 allocations whose memory glibc hands back
 * to the kernel and faults in again (~2× skopeo's system time, docs/performance.md). Here each
 * connection reads straight into a 1 MiB slab (net's `onread`), and a slab goes back to its pool
 * once every view of it has been released: bytes are received once, into memory that is reused.
 *
 * The rule that keeps this safe: each view a connection hands out holds one reference; only the
 * code that got the view releases it, once, when it no longer reads it. A view never released
 * pins its slab forever (it is then garbage collected like any buffer), so forgetting a release
 * costs memory, never bytes. Releasing too early could let new bytes overwrite a view still being
 * hashed: ct fetch would then fail its digest check (DIGEST_MISMATCH), never accept the bytes.
 */
const SLAB_BYTES = 1 << 20;
/** A connection moves to a new slab when less than this is left in its current one. */
const MIN_READ = 64 * 1024;

interface Slab {
  buf: Buffer;
  refs: number;
  pool: SlabPool;
}

const owners = new WeakMap<ArrayBufferLike, Slab>();

export class SlabPool {
  readonly free: Slab[] = [];
  /** Slabs made so far (for tests and measurements). */
  made = 0;

  constructor(readonly maxFree = 128) {}

  /** A slab nobody references: a recycled one, or a new one. */
  get(): Slab {
    const s = this.free.pop();
    if (s) return s;
    this.made++;
    const slab: Slab = { buf: Buffer.allocUnsafeSlow(SLAB_BYTES), refs: 0, pool: this };
    owners.set(slab.buf.buffer, slab);
    return slab;
  }
}

/** One connection's receive area: where its next read goes, and views of what it read. */
export class Filler {
  private slab: Slab | undefined;
  private used = 0;

  constructor(private readonly pool: SlabPool) {}

  /** The buffer for the next socket read (the rest of the current slab, or another slab). */
  next = (): Buffer => {
    if (!this.slab || SLAB_BYTES - this.used < MIN_READ) {
      this.drop();
      this.slab = this.pool.get();
      this.slab.refs = 1; // the filler's own reference, dropped when it moves on
      this.used = 0;
    }
    return this.slab.buf.subarray(this.used);
  };

  /**
   * A read put `n` bytes at the start of the last buffer `next` gave: those bytes are now taken
   * (the next read goes after them). Returns the view of bytes `[from, to)` of them, holding a
   * reference, or undefined when that is empty.
   */
  took(n: number, from = 0, to = n): Buffer | undefined {
    const s = this.slab!;
    const start = this.used;
    this.used += n;
    if (from >= to) return undefined;
    s.refs++;
    return s.buf.subarray(start + from, start + to);
  }

  /** The connection is gone: its slab returns once the views of it are released. */
  drop(): void {
    if (this.slab) unref(this.slab);
    this.slab = undefined;
  }
}

function unref(s: Slab): void {
  if (--s.refs === 0 && s.pool.free.length < s.pool.maxFree) s.pool.free.push(s);
}

/** Another holder of a view (a slice of it kept elsewhere): one more release is then due. */
export function retain(view: Buffer): void {
  const s = owners.get(view.buffer);
  if (s) s.refs++;
}

/** The holder of a view is done with it. Buffers not from a pool are ignored. */
export function release(view: Buffer): void {
  const s = owners.get(view.buffer);
  if (s) unref(s);
}
