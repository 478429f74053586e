/**
 * Trust material and policies of `ct admission serve`, reloaded when their files change, like
 * its TLS certificate. Kubernetes updates a mounted ConfigMap/Secret by swapping a `..data`
 * symlink in the directory, which a watch on the file itself never sees: the directories are
 * watched (fs.watch, prompt) and the files are also stat'ed periodically (fs.watch misses events
 * on some file systems and across symlink swaps).
 *
 * A reload builds a complete new value and swaps it in with one assignment; a file that does not
 * load (half-written, invalid, an older trust-store version: a rollback) is logged and counted,
 * and the previous value stays in force. Only a process that never loaded a valid one has none,
 * and the judge then denies everything (fail closed).
 */
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { CtError } from '../../src/core/errors.js';
import { loadTrustStore } from '../../src/trust/store.js';
import { trustMaterial } from '../../src/verify/trust-material.js';
import { loadTrustedRootFile } from '../../src/verify/sigstore/trusted-root.js';
import { trustKeyOf, type TrustMaterial } from '../../src/verify/report.js';
import type { PolicyStore } from '../../src/policy/store.js';

export interface ReloadState {
  /** Digest in force (trust store + trusted root, or the policy set's). */
  digest?: string;
  /** Successful loads that changed what is in force (1 after start). */
  loads: number;
  /** Loads that failed and left the previous value in force. */
  errors: number;
  lastError?: { code: string; message: string; at: string };
}

/**
 * A ReloadState as `GET /healthz` shows it to anyone who can reach the port (kubelet probes carry
 * no credentials): counts, digest and the last error's code and time, never its message, which
 * names files and what was wrong in them. The message is in the log.
 */
export function publicReloadState(s: ReloadState): Omit<ReloadState, 'lastError'> & { lastError?: Omit<NonNullable<ReloadState['lastError']>, 'message'> } {
  const { lastError, ...rest } = s;
  return lastError ? { ...rest, lastError: { code: lastError.code, at: lastError.at } } : rest;
}

const DEBOUNCE_MS = 100;
const MAX_ERROR = 500;

/** Calls `onChange` (debounced) when a watched path sees an event or a stat'ed path changes. */
export class FileWatch {
  private readonly watchers: FSWatcher[] = [];
  private readonly timer: NodeJS.Timeout;
  private debounce: NodeJS.Timeout | undefined;
  private readonly seen = new Map<string, string>();

  /** Files: their directories are watched. Directories: themselves (a rename inside changes their mtime too). */
  static forFiles(files: string[], intervalMs: number, onChange: () => void, log?: Logger): FileWatch {
    return new FileWatch([...new Set(files.map((f) => dirname(f)))], files, intervalMs, onChange, log);
  }

  constructor(watched: string[], private readonly paths: string[], intervalMs: number, private readonly onChange: () => void, log?: Logger) {
    for (const dir of new Set(watched)) {
      try {
        const w = watch(dir, { persistent: false }, () => this.fire());
        w.on('error', () => undefined);
        this.watchers.push(w);
      } catch (e) {
        log?.debug({ dir, err: (e as Error).message }, 'not watched; periodic checks only');
      }
    }
    void this.poll(true);
    this.timer = setInterval(() => void this.poll(false), intervalMs);
    this.timer.unref();
  }

  private fire(): void {
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => this.onChange(), DEBOUNCE_MS);
    this.debounce.unref();
  }

  private async poll(first: boolean): Promise<void> {
    let changed = false;
    for (const p of this.paths) {
      const s = await stat(p).then(
        (x) => `${x.ino}:${x.size}:${x.mtimeMs}`,
        () => 'missing',
      );
      if (!first && this.seen.get(p) !== s) changed = true;
      this.seen.set(p, s);
    }
    if (changed) this.fire();
  }

  close(): void {
    clearInterval(this.timer);
    clearTimeout(this.debounce);
    for (const w of this.watchers) w.close();
  }
}

function failed(state: ReloadState, e: unknown, log: Logger | undefined, what: string): void {
  state.errors++;
  const code = e instanceof CtError ? e.code : 'IO_ERROR';
  state.lastError = { code, message: (e as Error).message?.slice(0, MAX_ERROR) ?? String(e), at: new Date().toISOString() };
  log?.error({ code, err: state.lastError.message }, `admission ${what} not reloaded: keeping the previous one`);
}

/** Runs `fn` one at a time; a request during a run runs once more after it (no change is lost). */
function serialized(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  let again = false;
  const run = (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = fn().finally(() => {
      running = undefined;
      if (again) {
        again = false;
        void run();
      }
    });
    return running;
  };
  return run;
}

export interface TrustFiles {
  trustStore: string;
  trustedRoot?: string;
}

export class TrustReloader {
  private current: TrustMaterial | undefined;
  readonly state: ReloadState = { loads: 0, errors: 0 };
  readonly reload: () => Promise<void>;

  constructor(private readonly files: TrustFiles, private readonly log?: Logger) {
    this.reload = serialized(() => this.load());
  }

  /** The trust material in force, or undefined when none ever loaded. */
  get(): TrustMaterial | undefined {
    return this.current;
  }

  private async load(): Promise<void> {
    try {
      const store = await loadTrustStore(this.files.trustStore);
      const prev = this.current?.store;
      // An older version is a rollback (SPEC §5: versions only increase); the same version re-read is fine.
      if (prev && store.version < prev.version) throw new CtError('TRUST_STORE_ROLLBACK', `trust store ${this.files.trustStore} version ${store.version} is older than the ${prev.version} in force`, { current: prev.version, next: store.version });
      const root = this.files.trustedRoot ? await loadTrustedRootFile(this.files.trustedRoot) : undefined;
      const next = trustMaterial(store, root);
      const digest = trustKeyOf(next);
      if (digest === this.state.digest) return;
      this.current = next;
      this.state.digest = digest;
      this.state.loads++;
      if (this.state.loads > 1) this.log?.info({ version: store.version, digest: next.storeDigest }, 'admission trust store reloaded');
    } catch (e) {
      failed(this.state, e, this.log, 'trust store');
    }
  }
}

/** Reload state of a PolicyStore (which itself keeps the previous set when a reload fails). */
export function policyReloader(policies: PolicyStore, log?: Logger): { state: ReloadState; reload: () => Promise<void> } {
  const state: ReloadState = { loads: 0, errors: 0 };
  const reload = serialized(async () => {
    const r = await policies.reload();
    if (!r.ok) return failed(state, new CtError((r.error?.code ?? 'POLICY_INVALID') as never, r.error?.message ?? 'policies failed to load', {}), log, 'policy set');
    if (r.digest === state.digest) return;
    state.digest = r.digest;
    state.loads++;
    if (state.loads > 1) log?.info({ digest: r.digest }, 'admission policies reloaded');
  });
  return { state, reload };
}
