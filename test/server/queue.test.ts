import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { openDb, type Db } from '../../server/store/db.js';
import { migrate } from '../../server/store/migrations.js';
import { JobQueue } from '../../server/queue/queue.js';
import { startPostgres, type Postgres } from '../support/postgres.js';

async function drain(queues: JobQueue[], expected: number, seen: string[]): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (seen.length < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await Promise.all(queues.map((q) => q.stop()));
}

describe.each(['sqlite', 'postgres'] as const)('job queue on %s', (dialect) => {
  let pg: Postgres | undefined;
  let url: string | undefined;
  beforeAll(async () => {
    if (dialect === 'postgres') {
      pg = await startPostgres();
      url = pg.url;
    }
  }, 60_000);
  afterAll(async () => pg?.stop());

  const open = async (): Promise<Db> => {
    const db = await openDb({ databaseUrl: url, sqlitePath: ':memory:' });
    await migrate(db);
    return db;
  };

  it('migrates idempotently', async () => {
    const db = await open();
    expect(await migrate(db)).toBe(0);
    await db.close();
  });

  it('enqueues once per dedupe key and runs each job exactly once across two workers', async () => {
    const db = await open();
    // On SQLite two workers share the process's one database; on PostgreSQL they are two pools.
    const db2 = dialect === 'postgres' ? await open() : db;
    const seen: string[] = [];
    const mk = (d: Db) => {
      const q = new JobQueue(d, { pollMs: 50, concurrency: 3 });
      q.on('deploy', async (job) => {
        seen.push((job.payload as { n: string }).n);
        await new Promise((r) => setTimeout(r, 2));
        return { state: 'done' };
      });
      return q;
    };
    const [a, b] = [mk(db), mk(db2)];
    await Promise.all([a.start(), b.start()]);
    const n = 60;
    for (let i = 0; i < n; i++) {
      await a.enqueue('deploy', `key-${i}`, { n: `job-${i}` });
      const again = await b.enqueue('deploy', `key-${i}`, { n: `dup-${i}` });
      expect(again.created).toBe(false);
    }
    await drain([a, b], n, seen);
    expect(seen).toHaveLength(n);
    expect(new Set(seen).size).toBe(n);
    expect(seen.some((s) => s.startsWith('dup'))).toBe(false);
    const [row] = await db.query<{ c: number | string }>(`SELECT COUNT(*) AS c FROM jobs WHERE state = 'done' AND dedupe_key LIKE 'key-%'`);
    expect(Number(row.c)).toBe(n);
    if (db2 !== db) await db2.close();
    await db.close();
  });

  it('is woken by notifications, also after its listening connection was cut', async () => {
    const db = await open();
    const q = new JobQueue(db, { pollMs: 60_000 });
    const done: number[] = [];
    q.on('wake', async () => {
      done.push(Date.now());
      return { state: 'done' };
    });
    await q.start();
    await new Promise((r) => setTimeout(r, 100)); // the worker is now asleep until woken
    const t0 = Date.now();
    await q.enqueue('wake', `wake-1-${dialect}`, {});
    while (done.length < 1 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 10));
    expect(done).toHaveLength(1);
    if (dialect === 'postgres') {
      // Cut the LISTEN connection from the server side, as a restart or network failure would.
      await db.run(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`);
      await new Promise((r) => setTimeout(r, 1500));
    }
    const t1 = Date.now();
    await q.enqueue('wake', `wake-2-${dialect}`, {});
    while (done.length < 2 && Date.now() - t1 < 5000) await new Promise((r) => setTimeout(r, 10));
    await q.stop();
    await db.close();
    expect(done).toHaveLength(2);
    expect(done[1] - t1).toBeLessThan(5000);
  });

  it('retries with backoff, then fails for good', async () => {
    const db = await open();
    const q = new JobQueue(db, { pollMs: 20, backoffMs: () => 10 });
    let calls = 0;
    q.on('flaky', async () => {
      calls++;
      return calls < 3 ? { state: 'retry', error: 'transient' } : { state: 'done' };
    });
    q.on('bad', async () => ({ state: 'failed', error: 'denied' }));
    await q.start();
    await q.enqueue('flaky', 'f', {});
    await q.enqueue('bad', 'b', {});
    const deadline = Date.now() + 10_000;
    let rows: { dedupe_key: string; state: string; attempts: number }[] = [];
    while (Date.now() < deadline) {
      rows = await db.query(`SELECT dedupe_key, state, attempts FROM jobs WHERE dedupe_key IN ('b', 'f') ORDER BY dedupe_key`);
      if (rows.every((r) => r.state === 'done' || r.state === 'failed')) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await q.stop();
    expect(rows.map((r) => [r.dedupe_key, r.state, Number(r.attempts)])).toEqual([
      ['b', 'failed', 1],
      ['f', 'done', 3],
    ]);
    await db.close();
  });
});

describe('job queue leases', () => {
  it('renews the lease of a long job so that no other worker claims it meanwhile', async () => {
    const db = await openDb({ sqlitePath: ':memory:' });
    await migrate(db);
    let runs = 0;
    const mk = () => {
      // the job outlasts several leases; margins wide enough that a loaded machine's event-loop lag
      // (hundreds of ms) does not let a lease lapse between renewals
      const q = new JobQueue(db, { leaseMs: 1200, pollMs: 20 });
      q.on('slow', async () => {
        runs++;
        await new Promise((r) => setTimeout(r, 3000));
        return { state: 'done' };
      });
      return q;
    };
    const [a, b] = [mk(), mk()];
    await a.start();
    await b.start();
    await a.enqueue('slow', 'slow-1', {});
    const deadline = Date.now() + 15000;
    let state = '';
    while (Date.now() < deadline) {
      [{ state }] = await db.query<{ state: string }>(`SELECT state FROM jobs WHERE dedupe_key = 'slow-1'`);
      if (state === 'done') break;
      await new Promise((r) => setTimeout(r, 30));
    }
    await Promise.all([a.stop(), b.stop()]);
    expect(state).toBe('done');
    expect(runs).toBe(1);
    await db.close();
  });
});

describe('SQLite transactions', () => {
  it('keep other callers\' statements out of an open transaction and its rollback', async () => {
    const db = await openDb({ sqlitePath: ':memory:' });
    await migrate(db);
    const insert = (d: Db, id: string) => d.run('INSERT INTO audit (id, time, kind, record) VALUES (?, 0, ?, ?)', [id, 'test', '{}']);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const failing = db.tx(async (t) => {
      await insert(t, 'inside-a');
      await gate;
      throw new Error('roll back');
    });
    const other = insert(db, 'plain');
    const otherTx = db.tx(async (t) => void (await insert(t, 'inside-b')));
    release();
    await expect(failing).rejects.toThrow('roll back');
    await other;
    await otherTx;
    const ids = (await db.query<{ id: string }>(`SELECT id FROM audit ORDER BY id`)).map((r) => r.id);
    expect(ids).toEqual(['inside-b', 'plain']);
    await db.close();
  });
});
