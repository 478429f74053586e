import { closeSync, openSync } from 'node:fs';
import { lutimes, unlink } from 'node:fs/promises';
import { asIoError } from '../core/errors.js';
import { removeStaleTemps, tempPathFor } from '../core/fs.js';

/**
 * A temporary beside the destination unchanged for this long was left by a fetch that could not
 * remove it (SIGKILL, a crash, a power cut), and the next fetch to that destination removes it.
 * A running fetch touches its temporary every TEMP_HEARTBEAT_MS, since its bytes alone may pause
 * longer (a stalled registry under a long --timeout, a slow link filling a gzip block), so another
 * fetch takes it only when it has been stopped that long (SIGSTOP, a suspended machine); it then
 * fails at its rename (or at reading its file back by name): a removal never puts a partial or
 * wrong file under the destination name.
 * The age is the file's mtime against this machine's clock (hosts sharing the directory over a
 * network filesystem with clocks minutes apart can misjudge it). No lock file: one a killed fetch
 * left would need the same staleness rule, and a pid in it means nothing across pid namespaces or
 * hosts sharing the directory.
 */
export const STALE_TEMP_MS = 10 * 60_000;
export const TEMP_HEARTBEAT_MS = 60_000;

/**
 * Removes what killed fetches to `outPath` left: `.<name>.<12 hex>.tmp` beside it that are regular
 * files of this user unchanged for `staleMs`. Nothing else of that name is touched (a directory or
 * symlink there is not a fetch's: the -o directory may be /tmp, and a recursive removal there can
 * be steered into another directory). Best effort: one that cannot be removed must not stop the fetch.
 */
export async function removeStaleFetchTemps(outPath: string, staleMs: number): Promise<void> {
  await removeStaleTemps(outPath, { kind: 'own-files', olderThanMs: staleMs }).catch(() => undefined);
}

/**
 * The temporaries of one fetch: regular files beside the destination (tempPathFor's names, which
 * the stale rule above covers), touched every `heartbeatMs` while they are kept. Each is entered
 * in `shared` (FetchOptions.temporaries: what ct fetch unlinks on a signal) before it exists and
 * taken out once it no longer does under its name.
 *
 * A temporary is created synchronously (open O_CREAT|O_EXCL, closed at once), and every later open
 * is without O_CREAT: a signal handler runs between JavaScript tasks, so it sees the path either
 * not yet made and not yet listed, or made and listed, and no open still in flight on the thread
 * pool can make the file again after the handler unlinked it.
 */
export class FetchTemps {
  private readonly live = new Set<string>();
  private readonly heartbeat: NodeJS.Timeout;

  constructor(private readonly outPath: string, private readonly shared: Set<string> | undefined, heartbeatMs: number) {
    // lutimes: a name swapped for a symlink meanwhile is touched itself, never what it points to.
    this.heartbeat = setInterval(() => {
      const now = new Date();
      for (const p of this.live) void lutimes(p, now, now).catch(() => undefined);
    }, heartbeatMs).unref();
  }

  /** A new empty temporary beside the destination (created; open it with 'r+'). */
  make(): string {
    const p = tempPathFor(this.outPath);
    this.live.add(p);
    this.shared?.add(p);
    try {
      closeSync(openSync(p, 'wx'));
    } catch (e) {
      this.forget(p);
      throw asIoError(e, p);
    }
    return p;
  }

  /** `p` no longer exists under its name (renamed into place). */
  forget(p: string): void {
    this.live.delete(p);
    this.shared?.delete(p);
  }

  /**
   * Unlinks `p`; false when that failed (the directory made read-only meanwhile): it stays listed,
   * so a later remove or a signal handler tries again, and else the next fetch's clean-up takes it
   * once stale. Never throws: the error that led here is the one the caller must hear.
   */
  async remove(p: string): Promise<boolean> {
    try {
      await unlink(p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return false;
    }
    this.forget(p);
    return true;
  }

  /** The fetch is over: no more touching, and `shared` no longer lists what could not be removed. */
  stop(): void {
    clearInterval(this.heartbeat);
    for (const p of this.live) this.forget(p);
  }
}
