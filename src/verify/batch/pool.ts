/**
 * A small pool of worker threads for batch verification (#14 target 1: `ct verify` of many
 * bundles). Verification is CPU-bound and synchronous; one thread per available core lets a batch
 * use every core. The queue is bounded: `run` beyond `maxQueued` waiting tasks is refused with
 * VERIFY_QUEUE_FULL rather than holding unbounded work in memory. A worker that dies fails the task
 * it held (VERIFY_WORKER_FAILED) and is replaced; nothing else is lost.
 *
 * The worker module receives `workerData` and answers each `{ id, input }` message with
 * `{ id, ok }` or `{ id, err: { code, message, details } }`.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ErrorCode } from '../../core/codes.js';
import { CtError } from '../../core/errors.js';

/**
 * Codes a pool answers when it could not verify at all (full, or its thread gone): they say
 * nothing about the bundle, so they are never remembered as its verdict and a caller may retry.
 */
export const NOT_VERIFIED_CODES: ReadonlySet<string> = new Set(['VERIFY_QUEUE_FULL', 'VERIFY_WORKER_FAILED']);

export interface PoolOptions {
  /** Threads (default: available parallelism). */
  size?: number;
  /** Tasks waiting for a thread before `run` refuses more (default 1024). */
  maxQueued?: number;
}

interface Task<I, O> {
  id: number;
  input: I;
  resolve: (o: O) => void;
  reject: (e: unknown) => void;
}

interface Slot<I, O> {
  worker: Worker;
  task?: Task<I, O>;
}

type Reply<O> = { id: number; ok: O } | { id: number; err: { code: string; message: string; details?: Record<string, unknown> } };

/**
 * The worker module's URL. Built code runs it next to this file; when this file runs from its
 * TypeScript source (tests), the built twin under build/ is used: workers load plain JavaScript.
 */
export function workerUrl(name: string, from: string): URL {
  const url = new URL(`./${name}.js`, from);
  if (existsSync(fileURLToPath(url))) return url;
  const built = new URL(url.href.replace(/\/src\//, '/build/src/'));
  if (existsSync(fileURLToPath(built))) return built;
  throw new CtError('IO_ERROR', `worker module ${name}.js not found (run npm run build)`, { path: fileURLToPath(url) });
}

export class WorkerPool<I, O> {
  readonly size: number;
  private readonly maxQueued: number;
  private readonly slots: Slot<I, O>[] = [];
  private readonly queue: Task<I, O>[] = [];
  private nextId = 0;
  private closed = false;

  constructor(private readonly url: URL, private readonly workerData: unknown, o: PoolOptions = {}) {
    this.size = Math.max(1, Math.floor(o.size ?? availableParallelism()));
    this.maxQueued = Math.max(0, o.maxQueued ?? 1024);
    for (let i = 0; i < this.size; i++) this.slots.push(this.spawn());
  }

  /** Runs one task on the next free thread. */
  run(input: I): Promise<O> {
    if (this.closed) return Promise.reject(new CtError('VERIFY_WORKER_FAILED', 'verification pool is closed', {}));
    if (this.queue.length >= this.maxQueued) return Promise.reject(new CtError('VERIFY_QUEUE_FULL', `verification queue full (${this.maxQueued} waiting)`, { limit: this.maxQueued }));
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ id: this.nextId++, input, resolve, reject });
      this.dispatch();
    });
  }

  /** Stops every thread; tasks not finished are failed. */
  async close(): Promise<void> {
    this.closed = true;
    const gone = new CtError('VERIFY_WORKER_FAILED', 'verification pool closed', {});
    for (const t of this.queue.splice(0)) t.reject(gone);
    await Promise.all(this.slots.map(async (s) => {
      s.task?.reject(gone);
      s.task = undefined;
      await s.worker.terminate();
    }));
  }

  private spawn(): Slot<I, O> {
    const slot: Slot<I, O> = { worker: new Worker(this.url, { workerData: this.workerData }) };
    slot.worker.unref();
    slot.worker.on('message', (m: Reply<O>) => {
      const t = slot.task;
      if (!t || m.id !== t.id) return;
      slot.task = undefined;
      if ('ok' in m) t.resolve(m.ok);
      else t.reject(new CtError(m.err.code as ErrorCode, m.err.message, m.err.details ?? {}));
      this.dispatch();
    });
    const died = (why: string): void => {
      const i = this.slots.indexOf(slot);
      if (i < 0) return;
      slot.task?.reject(new CtError('VERIFY_WORKER_FAILED', `verification thread failed: ${why.slice(0, 300)}`, {}));
      slot.task = undefined;
      if (this.closed) return;
      this.slots[i] = this.spawn();
      this.dispatch();
    };
    slot.worker.on('error', (e) => died(e.message));
    slot.worker.on('exit', (code) => died(`exited (${code})`));
    return slot;
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (slot.task || this.queue.length === 0) continue;
      const t = this.queue.shift() as Task<I, O>;
      slot.task = t;
      slot.worker.ref();
      slot.worker.postMessage({ id: t.id, input: t.input });
    }
    // Idle threads do not keep the process alive.
    for (const slot of this.slots) if (!slot.task) slot.worker.unref();
  }
}
