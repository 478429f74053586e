/**
 * #13 finding 9 and #14 target 2: webhook deliveries (replays with new ids included) are coalesced
 * per repository, yet a push never waits for a time window: it reconciles at once, or right after
 * the reconcile that is running.
 */
import { describe, expect, it } from '@jest/globals';
import { openDb, type Db } from '../../server/store/db.js';
import { migrate } from '../../server/store/migrations.js';
import { JobQueue } from '../../server/queue/queue.js';
import { enqueueReconcile } from '../../server/deploy/reconcile-trigger.js';

const trigger = (label: string, repository = 'acme/desired', sha?: string) => ({ repository, label, sha });

async function open(): Promise<Db> {
  const db = await openDb({ sqlitePath: ':memory:' });
  await migrate(db);
  return db;
}

const reconcileJobs = (db: Db, repo = 'acme/desired') =>
  db.query<{ id: string; state: string; run_at: number; payload: string }>("SELECT id, state, run_at, payload FROM jobs WHERE kind = 'reconcile' AND serial_key = ? ORDER BY dedupe_key", [`reconcile:${repo}`]);

describe('reconcile triggers', () => {
  it('fifty deliveries of one repository before its reconcile starts cost that one reconcile, due now', async () => {
    const db = await open();
    const q = new JobQueue(db);
    const t0 = Date.now();
    const first = await enqueueReconcile(q, trigger('d-0'));
    expect(first.created).toBe(true);
    for (let i = 1; i < 50; i++) expect(await enqueueReconcile(q, trigger(`d-${i}`))).toEqual({ id: first.id, created: false });
    // Racing deliveries share it too.
    const raced = await Promise.all(Array.from({ length: 20 }, (_, i) => enqueueReconcile(q, trigger(`r-${i}`))));
    expect(new Set(raced.map((r) => r.id))).toEqual(new Set([first.id]));
    const mine = await reconcileJobs(db);
    expect(mine).toHaveLength(1);
    expect(Number(mine[0].run_at)).toBeLessThan(t0 + 1_000);
    // Another repository is not held back by this one.
    expect((await enqueueReconcile(q, trigger('other', 'acme/other'))).created).toBe(true);
    await db.close();
  });

  it('deliveries during a reconcile cost exactly one trailing reconcile, started as soon as the running one ends', async () => {
    const db = await open();
    // The safety poll is a minute: only the running job's end can start the trailing one in time.
    const q = new JobQueue(db, { pollMs: 60_000 });
    const started: string[] = [];
    let release!: () => void;
    const running = new Promise<void>((r) => (release = r));
    const ran = new Promise<void>((resolve) => {
      q.on('reconcile', async (job) => {
        const label = (job.payload as { trigger: string }).trigger;
        started.push(label);
        if (started.length === 1) await running;
        if (started.length === 2) resolve();
        return { state: 'done' };
      });
    });
    await q.start();
    try {
      await enqueueReconcile(q, trigger('push-1'));
      while (started.length === 0) await new Promise((r) => setTimeout(r, 5));
      // Fifty replays and pushes while push-1's reconcile runs (and the worker has 3 more slots).
      for (let i = 0; i < 50; i++) await enqueueReconcile(q, trigger(`during-${i}`));
      await new Promise((r) => setTimeout(r, 100));
      expect(started).toEqual(['push-1']); // not concurrently with the running one
      const jobs = await reconcileJobs(db);
      expect(jobs.map((j) => j.state)).toEqual(['running', 'queued']);
      release();
      await ran;
      expect(started).toEqual(['push-1', 'during-0']);
      while ((await reconcileJobs(db)).some((j) => j.state !== 'done')) await new Promise((r) => setTimeout(r, 5));
      expect(await reconcileJobs(db)).toHaveLength(2);
    } finally {
      release();
      await q.stop();
      await db.close();
    }
  });

  it('a push of the commit already applied (a replay of an old delivery) costs no reconcile', async () => {
    const db = await open();
    const q = new JobQueue(db);
    const applied = async () => 'a'.repeat(40);
    expect(await enqueueReconcile(q, trigger('replay', 'acme/desired', 'a'.repeat(40)), { applied })).toEqual({ id: null, created: false });
    expect(await reconcileJobs(db)).toHaveLength(0);
    expect((await enqueueReconcile(q, trigger('new', 'acme/desired', 'b'.repeat(40)), { applied })).created).toBe(true);
    await db.close();
  });

  it('a flood of pushes is bounded: beyond the burst, the next reconcile waits for the window', async () => {
    const db = await open();
    const q = new JobQueue(db);
    const limit = { burst: 3, windowMs: 60_000 };
    const t0 = Date.now();
    // Three pushes, each reconciled before the next arrives: all start at once.
    for (let i = 0; i < 3; i++) {
      const r = await enqueueReconcile(q, trigger(`p-${i}`), { limit });
      expect(r.created).toBe(true);
      const job = await q.claim();
      expect(job?.id).toBe(r.id);
      await q.complete(job!, { state: 'done' });
    }
    const fourth = await enqueueReconcile(q, trigger('p-3'), { limit });
    const jobs = await reconcileJobs(db);
    expect(jobs).toHaveLength(4);
    expect(jobs.slice(0, 3).every((j) => Number(j.run_at) < t0 + 1_000)).toBe(true);
    expect(jobs[3].id).toBe(fourth.id);
    expect(Number(jobs[3].run_at)).toBeGreaterThanOrEqual(Number(jobs[0].run_at) + 60_000);
    expect(await q.claim()).toBeNull();
    // More pushes join the waiting one: still one reconcile when the window allows.
    for (let i = 4; i < 20; i++) expect((await enqueueReconcile(q, trigger(`p-${i}`), { limit })).id).toBe(fourth.id);
    expect(await reconcileJobs(db)).toHaveLength(4);
    await db.close();
  });

  it('a push during a failed reconcile\'s backoff joins its retry (a flood cannot hasten retries)', async () => {
    const db = await open();
    const q = new JobQueue(db, { backoffMs: () => 600_000 });
    const r = await enqueueReconcile(q, trigger('p-0'));
    const job = await q.claim();
    await q.complete(job!, { state: 'retry', error: 'remote down' });
    for (let i = 1; i < 10; i++) expect((await enqueueReconcile(q, trigger(`p-${i}`))).id).toBe(r.id);
    expect(await q.claim()).toBeNull(); // still waiting for its backoff
    expect(await reconcileJobs(db)).toHaveLength(1);
    await db.close();
  });
});
