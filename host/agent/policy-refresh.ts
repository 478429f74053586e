import type { PolicyStore, ReloadOutcome } from '../../src/policy/store.js';

/**
 * How long an agent trusts the policy set it last read before an assignment reads the directory
 * again. A look at mtimes would walk and stat every file anyway, and misses an edit that keeps a
 * file's time (a checkout or rsync that sets it); a reload reads the files and compiles only those
 * whose text changed (PolicyStore's cache). The interval bounds that to one read per 2 s however
 * many assignments arrive (a resync of every app), and an edit is in force 2 s later at most.
 */
export const POLICY_RECHECK_MS = 2_000;
/**
 * How long an assignment waits for a load in flight. The wait happens inside the runner's exclusive
 * turn: a policy directory that hangs (an NFS server gone) must not block every deploy and stop.
 * Past it the assignment is judged by the last good set; the load goes on and the next check awaits it.
 */
export const POLICY_JUDGE_WAIT_MS = 5_000;

export interface PolicyRefreshOptions {
  /** Where the policies are read from, for the messages. */
  source: string;
  log: (line: string) => void;
  recheckMs?: number;
  judgeWaitMs?: number;
  /** A monotonic clock (ms): a wall clock stepped back (NTP) would stop the rechecks until it caught up. */
  now?: () => number;
}

/**
 * An agent's policies, read again on SIGHUP (`reload`) and before an assignment is judged
 * (`beforeJudge`). A set that fails to load leaves the last good one in force (PolicyStore);
 * each change of outcome (a new digest, a new failure) is said once, not per assignment.
 */
export class PolicyRefresh {
  private checkedAt = -Infinity;
  private said = '';
  /** The load in progress (a SIGHUP's, or a recheck's): an assignment is judged once it ended. */
  private inFlight: Promise<ReloadOutcome> | undefined;
  /** A reload asked while one was in flight: it may have read the files before the edit, so another follows. */
  private queued: Promise<ReloadOutcome> | undefined;
  private slowSaid = false;
  /**
   * A load that already kept an assignment waiting judgeWaitMs: not waited for again (a directory
   * that hangs for good would otherwise add judgeWaitMs to every assignment, inside the runner's
   * exclusive turn). A newer load (a SIGHUP's, queued after it) is waited for once in turn.
   */
  private lateLoad: Promise<ReloadOutcome> | undefined;
  private readonly now: () => number;

  constructor(readonly store: PolicyStore, private readonly o: PolicyRefreshOptions) {
    this.now = o.now ?? (() => performance.now());
  }

  /**
   * The agent's start: the first read, waited for judgeWaitMs at most, as an assignment waits for a
   * load. A policy directory that hangs (an NFS server gone) used to hang the start for good; past
   * the wait the agent starts with no set, so every assignment is refused (NO_POLICY, said once)
   * until the load ends: it never judges without policies.
   */
  firstLoad(): Promise<void> {
    return this.beforeJudge();
  }

  /** Reads the policies at once (SIGHUP); after the load in flight, if any. */
  reload(): Promise<ReloadOutcome> {
    if (!this.inFlight) return this.start();
    // After the load in flight whatever its end (start() never rejects, but a queued reload must
    // not hang on one that did).
    const next = () => {
      this.queued = undefined;
      return this.start();
    };
    this.queued ??= this.inFlight.then(next, next);
    this.inFlight = this.queued;
    return this.queued;
  }

  /**
   * Before an assignment is judged: awaits a load in flight, or reads the policies again when the
   * last read is older than the recheck interval; either for at most judgeWaitMs (the last good set
   * judges meanwhile).
   */
  async beforeJudge(): Promise<void> {
    const due = this.now() - this.checkedAt >= (this.o.recheckMs ?? POLICY_RECHECK_MS);
    const load = this.inFlight ?? (due ? this.reload() : undefined);
    if (!load || load === this.lateLoad) return;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<true>((resolve) => {
      timer = setTimeout(() => resolve(true), this.o.judgeWaitMs ?? POLICY_JUDGE_WAIT_MS);
    });
    const slow = await Promise.race([load.then(() => false as const), late]).finally(() => clearTimeout(timer));
    if (!slow) {
      this.slowSaid = false;
      return;
    }
    this.lateLoad = load;
    if (this.slowSaid) return;
    this.slowSaid = true;
    const digest = this.store.current?.digest;
    this.o.log(`policies from ${this.o.source} still loading after ${this.o.judgeWaitMs ?? POLICY_JUDGE_WAIT_MS} ms (a hung file system?): assignments are judged by ${digest ? `the last good set (${digest})` : 'no set (refused: NO_POLICY)'} until the load ends`);
  }

  private start(): Promise<ReloadOutcome> {
    this.checkedAt = this.now();
    // A store whose load throws (PolicyStore's does not) is a failed load like any other: the last
    // good set stays, and no rejection reaches SIGHUP's `void reload()` or sticks in the queue.
    const p: Promise<ReloadOutcome> = this.store.reload().catch((e: unknown): ReloadOutcome => ({
      ok: false, digest: this.store.current?.digest, issues: [], error: { code: 'IO_ERROR', message: String((e as Error)?.message ?? e).slice(0, 300) },
    })).then((r) => {
      this.tell(r);
      return r;
    }).finally(() => {
      if (this.inFlight === p) this.inFlight = undefined;
    });
    this.inFlight = p;
    return p;
  }

  private tell(r: ReloadOutcome): void {
    const key = r.ok ? `ok ${r.digest}` : `failed ${r.error?.code} ${r.error?.message} ${r.digest}`;
    const first = this.said === '';
    if (key === this.said) return;
    this.said = key;
    if (r.ok) {
      // The first set is said only when it came late (an agent that started refusing is told it judges now).
      if (!first) this.o.log(`policies from ${this.o.source} reloaded: ${r.digest}`);
      else if (this.slowSaid) this.o.log(`policies from ${this.o.source} loaded: ${r.digest}`);
      return;
    }
    const inForce = r.digest
      ? `the last good set (${r.digest}) stays in force`
      : 'every assignment is refused (NO_POLICY) until they load';
    this.o.log(`policies from ${this.o.source} failed to load (${r.error?.code}: ${(r.error?.message ?? '').slice(0, 300)}): ${inForce}; they are read again on SIGHUP and before the next assignment (--policies names them)`);
  }
}
