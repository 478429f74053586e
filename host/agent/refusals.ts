import { performance } from 'node:perf_hooks';
import { CtError } from '../../src/core/errors.js';
import type { RefusalCode } from '../../src/protocol/refusal.js';

/**
 * How long a signed HOST_UNKNOWN must keep coming, on every connection in a row, before the agent
 * believes it. HOST_REMOVED is final at once: the server holds a record of this id's removal,
 * which nothing but a removal writes. "Unknown" can be a server's passing state instead (a replica
 * started against the wrong or an empty database, a restore under way, with the right key file):
 * believed at once, it would stop a whole fleet for good. Thirty minutes of it, and at least
 * UNKNOWN_MIN_ANSWERS answers, is an operator's mistake that lasted, or a real "not enrolled".
 */
export const UNKNOWN_GRACE_MS = 30 * 60_000;
export const UNKNOWN_MIN_ANSWERS = 3;

/**
 * Whether the server's signed refusals (src/protocol/refusal.ts) mean the agent stops for good.
 * `now` is monotonic by default: a wall clock stepped forward (NTP, a VM resumed) must not make a
 * few answers seconds apart look like a grace that lasted.
 */
export class Refusals {
  private unknownSince?: number;
  private unknownAnswers = 0;

  constructor(private readonly graceMs = UNKNOWN_GRACE_MS, private readonly now: () => number = () => performance.now()) {}

  /**
   * A connection ended without a verified HOST_UNKNOWN (welcomed, a network error, a timeout, a
   * forged or another refusal, a busy server): the streak starts again. So "it lasted" means every
   * connection for the whole grace was answered so, never two answers with a silent server between.
   * A flaky path can only make the agent stop later: the safe direction.
   */
  interrupted(): void {
    this.unknownSince = undefined;
    this.unknownAnswers = 0;
  }

  /** A verified refusal: the error to stop with, or undefined to keep connecting (with the backoff). */
  refused(code: RefusalCode, hostId: string): CtError | undefined {
    if (code === 'HOST_REMOVED') {
      return new CtError('HOST_REMOVED', `the server removed this host (${hostId}): the agent stops and does not connect again; containers running on this machine are left as they are (ct host ps, ct host rm); to serve again, enrol it anew: an admin mints a token with \`ct host token\`, then \`ct host run --enroll-token TOKEN\` with an empty --state-dir`, { hostId });
    }
    const now = this.now();
    this.unknownSince ??= now;
    this.unknownAnswers++;
    if (this.unknownAnswers < UNKNOWN_MIN_ANSWERS || now - this.unknownSince < this.graceMs) return undefined;
    const minutes = Math.round((now - this.unknownSince) / 60_000);
    // Not "enrol anew": a server on a replaced or restored database still holds this id's key
    // once its database is put right, and this state directory is what it knows the host by.
    return new CtError('HOST_UNKNOWN', `the server has said for ${minutes} min, on every connection, that it has no record of this host (${hostId}): the agent stops and does not connect again; containers running on this machine are left as they are. If the server's database was replaced or restored, put it right, then start \`ct host run\` again with the same --state-dir (the host's id and key are still good); if this host was never enrolled on that server, enrol it there (\`ct host token\`, then \`ct host run --enroll-token TOKEN\` with an empty --state-dir)`, { hostId });
  }
}
