/**
 * PostgreSQL: two replicas (two pools) raising overlapping hosts' generations at once, as two
 * deploys' fan-outs do. Rows locked in scan order deadlocked (40P01), failing every assignment of
 * the aborted batch: here none fails, every host ends at the number of times it was raised, and no
 * generation is handed out twice (a host refuses one it has seen).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { openDb, type Db } from '../../server/store/db.js';
import { migrate } from '../../server/store/migrations.js';
import { txRetrying } from '../../server/store/retry.js';
import { raiseGenerations } from '../../server/hosts/generations.js';
import { startPostgres, type Postgres } from '../support/postgres.js';

describe('host generations raised concurrently on PostgreSQL', () => {
  let pg: Postgres;
  let a: Db;
  let b: Db;
  beforeAll(async () => {
    pg = await startPostgres();
    a = await openDb({ databaseUrl: pg.url });
    b = await openDb({ databaseUrl: pg.url });
    await migrate(a);
    // A deadlock is found after deadlock_timeout (1 s by default): 50 ms, so that without the lock
    // order this fails in seconds, not by the test's timeout. Its own cluster: nobody else's setting.
    await a.run("ALTER SYSTEM SET deadlock_timeout = '50ms'");
    await a.query('SELECT pg_reload_conf()');
  }, 60_000);
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await pg?.stop();
  });

  it('never deadlocks, loses or repeats a generation', async () => {
    const N = 30;
    const ids = Array.from({ length: N }, (_, i) => `h${String(i).padStart(2, '0')}`);
    for (const id of ids) await a.run('INSERT INTO hosts (id, name, public_key, labels, facts, enrolled_at) VALUES (?, ?, ?, ?, ?, ?)', [id, `n${id}`, 'k', '{}', '{}', 0]);
    // Half already raised once (a row each), half never (their first raise inserts the row).
    await a.tx((t) => raiseGenerations(t, new Map(ids.slice(0, N / 2).map((id) => [id, 1]))));
    const raises = new Map(ids.map((id) => [id, id < ids[N / 2] ? 1 : 0]));
    const given = new Map<string, number[]>(ids.map((id) => [id, []]));
    const errors: string[] = [];
    const shuffled = () => ids.map((id) => [Math.random(), id] as const).sort((x, y) => x[0] - y[0]).map(([, id]) => id);

    // A batch: a random subset of hosts in random order, each assigned once (one deploy's fan-out)
    // or, every other batch, 1 to 3 times (several apps' deploys in one turn).
    const batch = async (db: Db, i: number) => {
      const times = new Map(shuffled().slice(0, 1 + Math.floor(Math.random() * N)).map((id) => [id, i % 4 < 2 ? 1 : 1 + Math.floor(Math.random() * 3)]));
      try {
        const out = await txRetrying(db, (t) => raiseGenerations(t, times));
        expect([...out.keys()].sort()).toEqual([...times.keys()].sort());
        for (const [id, top] of out) {
          const k = times.get(id)!;
          for (let g = top - k + 1; g <= top; g++) given.get(id)!.push(g);
          raises.set(id, raises.get(id)! + k);
        }
      } catch (e) {
        errors.push((e as { code?: string }).code ?? (e as Error).message);
      }
    };
    await Promise.all(Array.from({ length: 300 }, (_, i) => batch(i % 2 ? a : b, i)));

    expect(errors).toEqual([]);
    const rows = await a.query<{ host_id: string; generation: string }>('SELECT host_id, generation FROM host_generations ORDER BY host_id');
    expect(Object.fromEntries(rows.map((r) => [r.host_id, Number(r.generation)]))).toEqual(Object.fromEntries(raises));
    // Every host was handed 1, 2, … its total, each once (the seeded first raise included).
    for (const [id, gs] of given) {
      const first = id < ids[N / 2] ? [1] : [];
      expect([...first, ...gs].sort((x, y) => x - y)).toEqual(Array.from({ length: raises.get(id)! }, (_, i) => i + 1));
    }
  }, 60_000);

  it('runs again a transaction PostgreSQL aborted as a deadlock, once it lost', async () => {
    for (const id of ['x', 'y']) await a.run('INSERT INTO hosts (id, name, public_key, labels, facts, enrolled_at) VALUES (?, ?, ?, ?, ?, ?)', [id, `n${id}`, 'k', '{}', '{}', 0]);
    await a.tx((t) => raiseGenerations(t, new Map([['x', 1], ['y', 1]])));
    // Two transactions each holding one row and then wanting the other's: a deadlock for certain.
    let bothHold!: () => void;
    const held = new Promise<void>((r) => (bothHold = r));
    let holding = 0;
    let attempts = 0;
    const crossed = (db: Db, mine: string, theirs: string) => txRetrying(db, async (t) => {
      attempts++;
      await t.run('UPDATE host_generations SET generation = generation + 1 WHERE host_id = ?', [mine]);
      if (++holding === 2) bothHold();
      await held;
      await t.run('UPDATE host_generations SET generation = generation + 1 WHERE host_id = ?', [theirs]);
    });
    await Promise.all([crossed(a, 'x', 'y'), crossed(b, 'y', 'x')]);
    // One of them was aborted and run again (the second time alone): both written, once each.
    expect(attempts).toBe(3);
    const rows = await a.query<{ host_id: string; generation: string }>("SELECT host_id, generation FROM host_generations WHERE host_id IN ('x', 'y') ORDER BY host_id");
    expect(rows.map((r) => [r.host_id, Number(r.generation)])).toEqual([['x', 3], ['y', 3]]);
  }, 30_000);
});
