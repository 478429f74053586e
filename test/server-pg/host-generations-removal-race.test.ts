/**
 * PostgreSQL: a host removal (DELETE FROM hosts) still uncommitted while a generations transaction
 * writes that host's first row. The INSERT … SELECT read the row the removal was deleting, then
 * failed its foreign key check once the removal committed (23503, not retried): every host of the
 * batch got an error, and a hello's lift threw, leaving its channel never registered. The removed
 * host is now skipped: absent from the answer (its assignment answers offline), the others raised.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { openDb, type Db } from '../../server/store/db.js';
import { migrate } from '../../server/store/migrations.js';
import { txRetrying } from '../../server/store/retry.js';
import { liftGeneration, raiseGenerations } from '../../server/hosts/generations.js';
import { startPostgres, type Postgres } from '../support/postgres.js';
import { heldLock } from './held-lock.js';

describe('a host removal racing its first generation on PostgreSQL', () => {
  let pg: Postgres;
  let a: Db;
  let b: Db;
  beforeAll(async () => {
    pg = await startPostgres();
    a = await openDb({ databaseUrl: pg.url });
    b = await openDb({ databaseUrl: pg.url });
    await migrate(a);
  }, 60_000);
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await pg?.stop();
  });

  /** Runs `write` while another transaction has deleted host `id` but not committed yet, then commits it. */
  async function duringRemoval<T>(id: string, write: () => Promise<T>): Promise<T> {
    const removal = await heldLock(b, 'DELETE FROM hosts WHERE id = ?', [id]);
    const out = write();
    out.catch(() => undefined);
    // The write reaches the deleted row and waits for (or, before the fix, reads past) the removal.
    await new Promise((r) => setTimeout(r, 300));
    await removal.release();
    return out;
  }

  async function enrol(...ids: string[]): Promise<void> {
    for (const id of ids) await a.run('INSERT INTO hosts (id, name, public_key, labels, facts, enrolled_at) VALUES (?, ?, ?, ?, ?, ?)', [id, `n-${id}`, 'k', '{}', '{}', 0]);
  }

  it('a batch raises the other hosts and leaves the removed one out', async () => {
    await enrol('x-raise', 'y-raise');
    // y has a row (assigned before), x none: its raise is the INSERT … SELECT FROM hosts.
    await a.tx((t) => raiseGenerations(t, new Map([['y-raise', 1]])));
    const raised = await duringRemoval('x-raise', () => txRetrying(a, (t) => raiseGenerations(t, new Map([['x-raise', 1], ['y-raise', 1]]))));
    expect([...raised]).toEqual([['y-raise', 2]]);
    expect(await a.query('SELECT host_id FROM host_generations WHERE host_id = ?', ['x-raise'])).toEqual([]);
  });

  it('a hello\'s lift of a host being removed writes nothing and does not throw', async () => {
    await enrol('x-lift');
    await expect(duringRemoval('x-lift', () => liftGeneration(a, 'x-lift', 5))).resolves.toBeUndefined();
    expect(await a.query('SELECT host_id FROM host_generations WHERE host_id = ?', ['x-lift'])).toEqual([]);
  });
});
