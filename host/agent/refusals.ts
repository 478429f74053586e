import { CtError } from '../../src/core/errors.js';
import type { RefusalCode } from '../../src/protocol/refusal.js';

/**
 * How long a signed HOST_UNKNOWN must keep coming, with no welcome between, before the agent
 * believes it. HOST_REMOVED is final at once: the server holds a record of this id's removal,
 * which nothing but a removal writes. "Unknown" can be a server's passing state instead (a replica
 * started against the wrong or an empty database, a restore under way, with the right key file):
 * believed at once, it would stop a whole fleet for good. Ten minutes of it, and at least
 * UNKNOWN_MIN_ANSWERS answers, is an operator's mistake that lasted, or a real "not enrolled".
 */
export const UNKNOWN_GRACE_MS = 10 * 60_000;
export const UNKNOWN_MIN_ANSWERS = 3;

/** Whether the server's signed refusals (src/protocol/refusal.ts) mean the agent stops for good. */
export class Refusals {
  private unknownSince?: number;
  private unknownAnswers = 0;

  constructor(private readonly graceMs = UNKNOWN_GRACE_MS, private readonly now: () => number = Date.now) {}

  /** The server welcomed the host: it knows it, whatever it said before. */
  welcomed(): void {
    this.unknownSince = undefined;
    this.unknownAnswers = 0;
  }

  /** A verified refusal: the error to stop with, or undefined to keep connecting (with the backoff). */
  refused(code: RefusalCode, hostId: string): CtError | undefined {
    const again = 'containers running on this machine are left as they are (ct host ps, ct host rm); to serve again, enrol it anew: an admin mints a token with `ct host token`, then `ct host run --enroll-token TOKEN` with an empty --state-dir';
    if (code === 'HOST_REMOVED') {
      return new CtError('HOST_REMOVED', `the server removed this host (${hostId}): the agent stops and does not connect again; ${again}`, { hostId });
    }
    const now = this.now();
    this.unknownSince ??= now;
    this.unknownAnswers++;
    if (this.unknownAnswers < UNKNOWN_MIN_ANSWERS || now - this.unknownSince < this.graceMs) return undefined;
    const minutes = Math.round((now - this.unknownSince) / 60_000);
    return new CtError('HOST_UNKNOWN', `the server has said for ${minutes} min that it does not know this host (${hostId}): the agent stops and does not connect again; ${again}`, { hostId });
  }
}
