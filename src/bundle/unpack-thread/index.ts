/**
 * Layers extracted on a worker thread (#14 target 5). A host's unpack of a 50 MiB image is a
 * SHA-256 of the layer, an inflate and 50 MiB of writes; in the agent's thread it also drove full
 * garbage collections of the agent's large heap (the chunks' external memory) and kept the thread
 * that answers the server busy. One long-lived thread (started at the first unpack, unref'd while
 * idle) does it instead; zlib's inflate still runs on libuv's pool, so hashing, inflating and
 * writing spread over the cores as `tar -xzf` spreads over tar and gzip.
 *
 * What runs is unchanged: the thread runs applyLayerRefs, which hashes every layer as it extracts
 * it and renames the temporary root filesystem into place only when every digest matched. A thread
 * that dies mid-extract (or an agent killed meanwhile) leaves only a `.<rootfs>.<hex>.tmp`
 * directory, which is never used and is removed (here, and before the next unpack to that place).
 */
import { Worker } from 'node:worker_threads';
import type { ErrorCode } from '../../core/codes.js';
import { CtError } from '../../core/errors.js';
import { removeStaleTemps } from '../../core/fs.js';
import { workerUrl } from '../../verify/batch/pool.js';
import { applyLayers, type ApplyOptions, type ApplyResult } from '../apply-layers.js';
import { BLOB_PREFIX, type CtpArchive } from '../archive.js';
import { checkOciLayout } from '../check-layout.js';
import type { TarLimits } from '../limits.js';

/** What the thread is asked: the layers (by offset in the uncompressed `.ctp` file) and where to put them. */
export interface UnpackTask {
  path: string;
  layers: { digest: string; size: number; dataOffset: number; data?: Uint8Array }[];
  rootfsDir: string;
  limits?: Partial<TarLimits>;
}

type Reply = { id: number; ok: ApplyResult } | { id: number; err: { code: string; message: string; details?: Record<string, unknown> } };

class UnpackThread {
  private worker?: Worker;
  private readonly pending = new Map<number, { task: UnpackTask; resolve: (r: ApplyResult) => void; reject: (e: unknown) => void }>();
  private nextId = 0;

  run(task: UnpackTask): Promise<ApplyResult> {
    const w = (this.worker ??= this.spawn());
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { task, resolve, reject });
      w.ref();
      w.postMessage({ id, task });
    });
  }

  /** Starts the thread ahead of the first unpack (an agent at start-up): its start is not paid by a deploy. */
  warm(): void {
    this.worker ??= this.spawn();
  }

  /** Ends the thread (tests; a crash is simulated with it): unfinished unpacks fail and leave nothing. */
  async stop(): Promise<void> {
    await this.worker?.terminate();
  }

  private spawn(): Worker {
    const w = new Worker(workerUrl('worker', import.meta.url));
    w.on('message', (m: Reply) => {
      const t = this.pending.get(m.id);
      if (!t) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) w.unref();
      if ('ok' in m) t.resolve(m.ok);
      else t.reject(new CtError(m.err.code as ErrorCode, m.err.message, m.err.details ?? {}));
    });
    const died = (why: string): void => {
      if (this.worker !== w) return;
      this.worker = undefined;
      const tasks = [...this.pending.values()];
      this.pending.clear();
      for (const t of tasks) {
        // Whatever the thread had half-written goes before the caller hears of it (whole trees:
        // a root filesystem's parent is the caller's private state directory, host/agent/prepare.ts).
        // A removal that fails (read-only or failing disk) must not become an unhandled rejection
        // that ends the agent: the caller hears of both.
        void removeStaleTemps(t.task.rootfsDir, { kind: 'private-trees' }).then(
          () => t.reject(new CtError('UNPACK_WORKER_FAILED', `unpack thread failed: ${why.slice(0, 300)}; nothing was unpacked to ${t.task.rootfsDir}`, { rootfs: t.task.rootfsDir })),
          (e: Error) =>
            t.reject(new CtError('UNPACK_WORKER_FAILED', `unpack thread failed: ${why.slice(0, 300)}; its temporary files in ${t.task.rootfsDir} could not be removed: ${String(e.message).slice(0, 200)}`, { rootfs: t.task.rootfsDir })),
        );
      }
    };
    w.on('error', (e) => died(e.message));
    w.on('exit', (code) => died(`exited (${code})`));
    // After the listeners (adding one refs the thread again): idle, it keeps no process alive.
    w.unref();
    return w;
  }
}

/** The one unpack thread of this process. */
export const unpackThread = new UnpackThread();

/**
 * applyLayers of a verified archive, on the unpack thread when the layers can be read from the
 * file by offset (an uncompressed `.ctp` on disk, the form `ct pack` writes); in this thread
 * otherwise (a gzip-compressed `.ctp` must be inflated from its start for every entry).
 */
export async function applyLayersOffThread(archive: CtpArchive, rootfsDir: string, opts: ApplyOptions = {}): Promise<ApplyResult> {
  if (archive.compressed || !('path' in archive.source)) return applyLayers(archive, rootfsDir, opts);
  const image = checkOciLayout(archive, { platform: opts.platform });
  const layers = image.layers.map((l) => {
    const e = archive.entries.get(`${BLOB_PREFIX}${l.digest.slice(7)}`);
    if (!e) throw new CtError('OCI_LAYOUT_INVALID', `layer ${l.digest} is missing`, { digest: l.digest });
    return { digest: l.digest, size: l.size, dataOffset: e.dataOffset, ...(e.data ? { data: e.data } : {}) };
  });
  return unpackThread.run({ path: archive.source.path, layers, rootfsDir, ...(opts.limits ? { limits: opts.limits } : {}) });
}
