import { randomUUID } from 'node:crypto';
import type { Db } from '../store/db.js';

/**
 * A durable job queue in the server's own database. Hand-written because pg-boss runs on
 * PostgreSQL only and the embedded default is SQLite; the same tables and SQL serve both.
 * Jobs are idempotent by `dedupe_key`; claiming is atomic (SKIP LOCKED on PostgreSQL, a single
 * writer on SQLite), so two replicas never run the same job; a crashed worker's lease expires and
 * the job runs again — handlers must be idempotent.
 */
export interface Job<P = unknown> {
  id: string;
  kind: string;
  dedupeKey: string;
  payload: P;
  attempts: number;
  maxAttempts: number;
  /** Jobs with the same serial key never run at the same time (see `enqueue`). */
  serialKey?: string;
}

/**
 * `handoff`: this worker cannot run the job but worker `to` can (e.g. the replica a deploy's host
 * is connected to); the job goes back to the queue for `to` only, without spending an attempt.
 */
export type JobOutcome =
  | { state: 'done'; result?: unknown }
  | { state: 'retry'; error: string }
  | { state: 'failed'; error: string }
  | { state: 'handoff'; to: string; reason: string };

/** A job handed to a worker that does not take it within this time is open to every worker again. */
export const AFFINITY_MS = 30_000;
export type Handler = (job: Job) => Promise<JobOutcome>;

const CHANNEL = 'ct_jobs';

export class JobQueue {
  private handlers = new Map<string, Handler>();
  private running = false;
  private wake: (() => void) | null = null;
  private unlisten: (() => Promise<void>) | null = null;
  private loop: Promise<void> | null = null;
  private active = 0;
  /** A wake-up that came while the loop was not waiting (claiming): the next wait returns at once. */
  private woken = false;

  constructor(
    private readonly db: Db,
    private readonly opts: { workerId?: string; leaseMs?: number; pollMs?: number; concurrency?: number; backoffMs?: (attempt: number) => number } = {},
  ) {}

  get workerId(): string {
    return (this.opts.workerId ??= randomUUID());
  }

  on(kind: string, handler: Handler): void {
    this.handlers.set(kind, handler);
  }

  /**
   * Enqueues once per dedupe key; returns the id of the job that holds the key. `serialKey`: a job
   * is not claimed while another job of the same serial key runs (its lease unexpired), so the
   * jobs of one group run one after the other, the next as soon as the previous one completes.
   */
  async enqueue(kind: string, dedupeKey: string, payload: unknown, opts: { maxAttempts?: number; runAt?: number; serialKey?: string } = {}): Promise<{ id: string; created: boolean }> {
    const now = Date.now();
    const runAt = Math.max(now, opts.runAt ?? now);
    const id = randomUUID();
    const res = await this.db.run(
      `INSERT INTO jobs (id, kind, dedupe_key, payload, state, attempts, max_attempts, run_at, created_at, updated_at, serial_key)
       VALUES (?, ?, ?, ?, 'queued', 0, ?, ?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING`,
      [id, kind, dedupeKey, JSON.stringify(payload), opts.maxAttempts ?? 5, runAt, now, now, opts.serialKey ?? null],
    );
    if (res.changes > 0) {
      await this.db.notify(CHANNEL);
      this.wakeAt(runAt);
      return { id, created: true };
    }
    const [row] = await this.db.query<{ id: string }>('SELECT id FROM jobs WHERE dedupe_key = ?', [dedupeKey]);
    return { id: row.id, created: false };
  }

  /** The newest `n` jobs of a serial group, newest (greatest dedupe key) first. */
  async newest(serialKey: string, n: number): Promise<{ id: string; dedupeKey: string; state: string; runAt: number }[]> {
    const rows = await this.db.query<{ id: string; dedupe_key: string; state: string; run_at: number | string }>(
      'SELECT id, dedupe_key, state, run_at FROM jobs WHERE serial_key = ? ORDER BY dedupe_key DESC LIMIT ?',
      [serialKey, n],
    );
    return rows.map((r) => ({ id: r.id, dedupeKey: r.dedupe_key, state: r.state, runAt: Number(r.run_at) }));
  }

  /** A job due later than now: this worker looks again when it is due, not at its next poll. */
  private wakeAt(runAt: number): void {
    const delay = runAt - Date.now();
    if (delay > 0 && this.running) setTimeout(() => this.poke(), delay + 5).unref();
  }

  async claim(): Promise<Job | null> {
    const now = Date.now();
    const lease = now + (this.opts.leaseMs ?? 60_000);
    // A job handed to another worker is not ours to take until its affinity has expired.
    const mine = `(j.affinity IS NULL OR j.affinity = ? OR j.run_at <= ?)`;
    // Not while another job of its serial group runs (a lease that expired no longer counts).
    const serial = `(j.serial_key IS NULL OR NOT EXISTS (SELECT 1 FROM jobs r WHERE r.serial_key = j.serial_key AND r.id <> j.id AND r.state = 'running' AND r.locked_until >= ?))`;
    const pick = `SELECT j.id FROM jobs j WHERE ((j.state = 'queued' AND j.run_at <= ?) OR (j.state = 'running' AND j.locked_until < ?)) AND ${mine} AND ${serial}
           ORDER BY j.run_at, j.id LIMIT 1${this.db.dialect === 'postgres' ? ' FOR UPDATE SKIP LOCKED' : ''}`;
    return this.db.tx(async (t) => {
      const [row] = await t.query<{ id: string }>(pick, [now, now, this.workerId, now - AFFINITY_MS, now]);
      if (!row) return null;
      await t.run(`UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_by = ?, locked_until = ?, updated_at = ? WHERE id = ?`, [
        this.workerId, lease, now, row.id,
      ]);
      const [j] = await t.query<Record<string, unknown>>('SELECT * FROM jobs WHERE id = ?', [row.id]);
      return {
        id: String(j.id),
        kind: String(j.kind),
        dedupeKey: String(j.dedupe_key),
        payload: JSON.parse(String(j.payload)),
        attempts: Number(j.attempts),
        maxAttempts: Number(j.max_attempts),
        ...(j.serial_key ? { serialKey: String(j.serial_key) } : {}),
      };
    });
  }

  async complete(job: Job, outcome: JobOutcome): Promise<void> {
    const now = Date.now();
    if (outcome.state === 'done') {
      await this.db.run(`UPDATE jobs SET state = 'done', result = ?, locked_by = NULL, updated_at = ? WHERE id = ? AND locked_by = ?`, [
        JSON.stringify(outcome.result ?? null), now, job.id, this.workerId,
      ]);
    } else if (outcome.state === 'handoff') {
      await this.db.run(`UPDATE jobs SET state = 'queued', affinity = ?, attempts = attempts - 1, run_at = ?, last_error = ?, locked_by = NULL, updated_at = ? WHERE id = ? AND locked_by = ?`, [
        outcome.to, now, `handed to ${outcome.to}: ${outcome.reason}`, now, job.id, this.workerId,
      ]);
      await this.db.notify(CHANNEL);
    } else if (outcome.state === 'retry' && job.attempts < job.maxAttempts) {
      const delay = (this.opts.backoffMs ?? ((a) => Math.min(30_000, 250 * 2 ** a)))(job.attempts);
      await this.db.run(`UPDATE jobs SET state = 'queued', run_at = ?, last_error = ?, locked_by = NULL, updated_at = ? WHERE id = ? AND locked_by = ?`, [
        now + delay, outcome.error, now, job.id, this.workerId,
      ]);
      setTimeout(() => this.poke(), delay + 5).unref();
    } else {
      await this.db.run(`UPDATE jobs SET state = 'failed', last_error = ?, locked_by = NULL, updated_at = ? WHERE id = ? AND locked_by = ?`, [
        outcome.error, now, job.id, this.workerId,
      ]);
    }
    // The next job of its group may be waiting for this one, on any replica.
    if (job.serialKey && outcome.state !== 'handoff') await this.db.notify(CHANNEL);
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    if (this.db.dialect === 'sqlite') {
      // The embedded database belongs to this one process: a job still marked running was held by
      // a previous life of this server that died (kill -9). Take it back now instead of waiting for
      // its lease; its handler is idempotent.
      await this.db.run(`UPDATE jobs SET state = 'queued', locked_by = NULL, run_at = ? WHERE state = 'running'`, [Date.now()]);
    }
    this.unlisten = await this.db.listen(CHANNEL, () => this.poke());
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    const concurrency = this.opts.concurrency ?? 4;
    while (this.running) {
      let claimed = false;
      while (this.running && this.active < concurrency) {
        const job = await this.claim().catch(() => null);
        if (!job) break;
        claimed = true;
        this.active++;
        void this.execute(job).finally(() => {
          this.active--;
          this.poke();
        });
      }
      if (!this.running) break;
      // Woken by NOTIFY / in-process notify on enqueue, by a finished job, or a slow safety poll.
      // A wake-up that came while claiming (a job finished then) is not lost: claim again now.
      if (this.woken) {
        this.woken = false;
        continue;
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          this.wake = null;
          resolve();
        };
        const t = setTimeout(done, claimed ? 0 : (this.opts.pollMs ?? 2_000));
        this.wake = done;
      });
    }
  }

  private async execute(job: Job): Promise<void> {
    const handler = this.handlers.get(job.kind);
    // Renew the lease while the handler runs: a job that takes longer than one lease (a host that
    // is slow to answer) must not be claimed again by another worker while it is still running.
    const leaseMs = this.opts.leaseMs ?? 60_000;
    const renew = setInterval(() => {
      void this.db
        .run('UPDATE jobs SET locked_until = ? WHERE id = ? AND locked_by = ?', [Date.now() + leaseMs, job.id, this.workerId])
        .catch(() => undefined);
    }, Math.max(50, Math.floor(leaseMs / 3)));
    renew.unref();
    let outcome: JobOutcome;
    try {
      outcome = handler ? await handler(job) : { state: 'failed', error: `no handler for ${job.kind}` };
    } catch (e) {
      outcome = { state: 'retry', error: (e as Error)?.message ?? String(e) };
    } finally {
      clearInterval(renew);
    }
    await this.complete(job, outcome).catch(() => undefined);
  }

  private poke(): void {
    if (this.wake) this.wake();
    else this.woken = true;
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
    while (this.active > 0) await new Promise((r) => setTimeout(r, 10));
    await this.unlisten?.();
    // stop() may be called again (close after a test stopped the queue): release the listener once.
    this.unlisten = null;
  }
}
