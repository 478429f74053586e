/** #13 finding 9: webhook deliveries (replays with new ids included) are coalesced per repository. */
import { describe, expect, it } from '@jest/globals';
import { openDb } from '../../server/store/db.js';
import { migrate } from '../../server/store/migrations.js';
import { JobQueue } from '../../server/queue/queue.js';
import { enqueueReconcile } from '../../server/deploy/reconcile-trigger.js';

const trigger = (deliveryId: string, repository = 'acme/desired') => ({ source: 'github' as const, event: 'push', deliveryId, repository });

describe('reconcile triggers', () => {
  it('fifty deliveries of one repository in one window cost one reconcile now and one at the window end', async () => {
    const db = await openDb({ sqlitePath: ':memory:' });
    await migrate(db);
    const q = new JobQueue(db);
    const now = 10_000_000_500; // mid-window for a 2 s interval
    for (let i = 0; i < 50; i++) await enqueueReconcile(q, trigger(`d-${i}`), 2_000, now + i);
    await enqueueReconcile(q, trigger('other', 'acme/other'), 2_000, now);
    const jobs = await db.query<{ dedupe_key: string; run_at: number }>("SELECT dedupe_key, run_at FROM jobs WHERE kind = 'reconcile' ORDER BY dedupe_key");
    const mine = jobs.filter((j) => j.dedupe_key.includes('acme/desired'));
    expect(mine).toHaveLength(2);
    expect(Number(mine[1].run_at)).toBeGreaterThanOrEqual(10_000_002_000);
    // Another repository is not held back by this one.
    expect(jobs.filter((j) => j.dedupe_key.includes('acme/other'))).toHaveLength(1);
    // The next window starts a fresh reconcile at once.
    expect((await enqueueReconcile(q, trigger('later'), 2_000, now + 2_000)).created).toBe(true);
    await db.close();
  });
});
