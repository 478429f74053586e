/**
 * How slow a registry answer may be (docs/registry.md "Time bounds"). An idle timeout alone
 * bounds nothing: a registry that sends one byte just inside it, again and again, holds the
 * request for ever (a `ct fetch --timeout 3000` was still running after a minute). So every
 * answer body must also keep an average rate: after a grace of `graceMs` from its head, it must
 * have delivered `minBytesPerSecond` for every further second, or it fails as too slow. That
 * needs no size (chunked answers have none) and bounds a known size too: `size` bytes take at
 * most `graceMs + size / minBytesPerSecond`. A caller may also set one overall deadline (a whole
 * `fetchCtp` in the deploy server and in admission), checked before every request and with every
 * received chunk.
 *
 * Checked per chunk received, never with a timer per byte: a chunk costs two clock reads. Silence
 * between chunks is the idle timeout's to end, so neither bound is ever missed by more than it.
 */
export interface PaceLimits {
  /** The least average rate of an answer body once `graceMs` has gone by. */
  minBytesPerSecond: number;
  /** Time from the head during which no rate is asked (the client's timeoutMs). */
  graceMs: number;
  /** Epoch ms after which no request may go on (undefined: none). */
  deadline: () => number | undefined;
}

/** The default minimum rate: low enough for four parallel parts on a 512 kbit/s link. */
export const MIN_BYTES_PER_SECOND = 16 * 1024;

/** Why an answer is given up, or undefined while it keeps pace. */
export type PaceVerdict = string | undefined;

export class Pace {
  private readonly start = performance.now();
  private pausedMs = 0;
  private pausedAt: number | undefined;

  constructor(private readonly limits: PaceLimits) {}

  /** The reader stopped taking bytes: that wait is ours, not the registry's, and does not count. */
  paused(): void {
    this.pausedAt ??= performance.now();
  }

  resumed(): void {
    if (this.pausedAt === undefined) return;
    this.pausedMs += performance.now() - this.pausedAt;
    this.pausedAt = undefined;
  }

  /** After `received` bytes of the body in all. */
  check(received: number): PaceVerdict {
    const { minBytesPerSecond: rate, graceMs } = this.limits;
    const elapsed = performance.now() - this.start - this.pausedMs;
    if (elapsed > graceMs + (received / rate) * 1000) {
      return `too slow: ${received} bytes in ${Math.round(elapsed)} ms, less than the minimum of ${rate} bytes/s after the first ${graceMs} ms`;
    }
    return pastDeadline(this.limits.deadline());
  }
}

/** The overall deadline's verdict on its own (before a request, and per chunk). */
export function pastDeadline(deadline: number | undefined): PaceVerdict {
  if (deadline === undefined || Date.now() <= deadline) return undefined;
  return `too slow: the overall deadline (${new Date(deadline).toISOString()}) has passed`;
}

/** What is left of the deadline for a wait that is otherwise `timeoutMs` (at least 1 ms). */
export function withinDeadline(timeoutMs: number, deadline: number | undefined): number {
  return deadline === undefined ? timeoutMs : Math.max(1, Math.min(timeoutMs, deadline - Date.now()));
}
