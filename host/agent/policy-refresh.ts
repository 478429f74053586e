import type { PolicyStore, ReloadOutcome } from '../../src/policy/store.js';

/**
 * How long an agent trusts the policy set it last read before an assignment reads the directory
 * again. A look at mtimes would walk and stat every file anyway, and misses an edit that keeps a
 * file's time (a checkout or rsync that sets it); a reload reads the files and compiles only those
 * whose text changed (PolicyStore's cache). The interval bounds that to one read per 2 s however
 * many assignments arrive (a resync of every app), and an edit is in force 2 s later at most.
 */
export const POLICY_RECHECK_MS = 2_000;

export interface PolicyRefreshOptions {
  /** Where the policies are read from, for the messages. */
  source: string;
  log: (line: string) => void;
  recheckMs?: number;
}

/**
 * An agent's policies, read again on SIGHUP (`reload`) and before an assignment is judged
 * (`beforeJudge`). A set that fails to load leaves the last good one in force (PolicyStore);
 * each change of outcome (a new digest, a new failure) is said once, not per assignment.
 */
export class PolicyRefresh {
  private checkedAt = -Infinity;
  private said = '';

  constructor(readonly store: PolicyStore, private readonly o: PolicyRefreshOptions) {}

  /** Reads the policies at once (the agent's start, SIGHUP). */
  async reload(): Promise<ReloadOutcome> {
    this.checkedAt = Date.now();
    const r = await this.store.reload();
    this.tell(r);
    return r;
  }

  /** Reads them again when the last read is older than the recheck interval. */
  async beforeJudge(): Promise<void> {
    if (Date.now() - this.checkedAt < (this.o.recheckMs ?? POLICY_RECHECK_MS)) return;
    await this.reload();
  }

  private tell(r: ReloadOutcome): void {
    const key = r.ok ? `ok ${r.digest}` : `failed ${r.error?.code} ${r.error?.message} ${r.digest}`;
    const first = this.said === '';
    if (key === this.said) return;
    this.said = key;
    if (r.ok) {
      if (!first) this.o.log(`policies from ${this.o.source} reloaded: ${r.digest}`);
      return;
    }
    const inForce = r.digest
      ? `the last good set (${r.digest}) stays in force`
      : 'every assignment is refused (NO_POLICY) until they load';
    this.o.log(`policies from ${this.o.source} failed to load (${r.error?.code}: ${(r.error?.message ?? '').slice(0, 300)}): ${inForce}; they are read again on SIGHUP and before the next assignment (--policies names them)`);
  }
}
