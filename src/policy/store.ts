/**
 * The live policy set of a long-running process (server, host). `reload()` builds a complete new
 * set and swaps it in only when it loaded without errors: a broken push to the policy repository
 * leaves the previous good set in force, never half of each.
 */
import type { PolicyIssue } from './issues.js';
import { loadPolicies, type CompileCache, type PolicyReader } from './load.js';
import type { PolicySet } from './policy-set.js';

export interface ReloadOutcome {
  ok: boolean;
  /** Digest of the set in force after the reload. */
  digest?: string;
  issues: PolicyIssue[];
  error?: { code: string; message: string };
}

export class PolicyStore {
  private currentSet: PolicySet | undefined;
  private pending: Promise<ReloadOutcome> | undefined;
  /** Unchanged files are not parsed again on reload. */
  private readonly cache: CompileCache = new Map();

  /** Where the policies are read from (files, or directories searched recursively). */
  constructor(readonly paths: readonly string[], private readonly read?: PolicyReader) {}

  /** The set in force, or undefined before the first successful load (callers deny: NO_POLICY). */
  get current(): PolicySet | undefined {
    return this.currentSet;
  }

  /** Loads the repository again; concurrent calls share one load. */
  reload(): Promise<ReloadOutcome> {
    this.pending ??= this.load().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async load(): Promise<ReloadOutcome> {
    try {
      const { set, issues } = await loadPolicies(this.paths, this.cache, this.read);
      this.currentSet = set;
      return { ok: true, digest: set.digest, issues };
    } catch (e) {
      const err = e as { code?: string; message?: string; details?: { issues?: PolicyIssue[] } };
      return { ok: false, digest: this.currentSet?.digest, issues: err.details?.issues ?? [], error: { code: err.code ?? 'IO_ERROR', message: err.message ?? String(e) } };
    }
  }
}
