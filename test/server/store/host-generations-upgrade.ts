/**
 * The upgrade to `host_generations` (#14 target 8), run against SQLite and PostgreSQL by
 * host-generations-upgrade.test.ts in test/server/store and test/server-pg: a database made by the
 * previous version (every migration before this one, applied as migrate() applies them) with
 * generations in `hosts.generation`, upgraded, keeps every host's generation; the next assignment
 * is above it, a hello lifts but never lowers it, and a removed host's goes with it while a name
 * enrolled again starts from 0, as before.
 */
import { expect } from '@jest/globals';
import type { Db } from '../../../server/store/db.js';
import { migrate, MIGRATIONS } from '../../../server/store/migrations.js';
import { GENERATION_JOIN, GENERATION_OF, liftGeneration, raiseGenerations } from '../../../server/hosts/generations.js';
import { removeHost } from '../../../server/hosts/removal.js';

/** The migration that made the table (append-only: the ones before it are what the previous version shipped). */
const VERSION = MIGRATIONS.findIndex((m) => m.some((sql) => sql.includes('CREATE TABLE host_generations'))) + 1;

/** A database as the previous version left it: its migrations applied, hosts with their generations in `hosts`. */
async function previousVersionDatabase(db: Db, hosts: [string, number][]): Promise<void> {
  await db.run('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)');
  for (let v = 1; v < VERSION; v++) {
    await db.tx(async (t) => {
      await t.run('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)', [v, 0]);
      for (const sql of MIGRATIONS[v - 1]) await t.run(sql);
    });
  }
  // ~0.8 KB of facts and an inventory, as a connected host's row holds.
  const facts = JSON.stringify({ kernel: '6.1.0-28-amd64', arch: 'x86_64', os: 'debian', osVersion: '12', cpus: 2, memoryBytes: 24e9, runtime: 'runc 1.1.12', pad: 'x'.repeat(600) });
  for (const [id, generation] of hosts) {
    await db.run('INSERT INTO hosts (id, name, public_key, labels, facts, generation, containers, enrolled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', [
      id, `name-${id}`, 'key', '{"env":"production"}', facts, generation, '[{"id":"ct-production-web-0123456789","state":"running"}]', 0,
    ]);
  }
}

const raise = (db: Db, ids: string[], k = 1) => db.tx((t) => raiseGenerations(t, new Map(ids.map((id) => [id, k]))));
/** Each host's generation as production reads it (the hello's welcome). */
const listed = async (db: Db) => Object.fromEntries((await db.query<{ id: string; generation: number }>(
  `SELECT h.id, ${GENERATION_OF} AS generation FROM hosts h ${GENERATION_JOIN} ORDER BY h.id`,
)).map((r) => [r.id, Number(r.generation)]));

export async function checkGenerationUpgrade(db: Db): Promise<void> {
  expect(VERSION).toBeGreaterThan(1);
  // 2^40: beyond 32 bits (BIGINT), still exact in a JS number.
  const before: [string, number][] = [['a', 0], ['b', 1], ['c', 41], ['d', 2 ** 40]];
  await previousVersionDatabase(db, before);
  expect(await migrate(db)).toBe(MIGRATIONS.length - VERSION + 1);

  // Every host keeps its generation; the next assignment of each is above what it accepted.
  expect(await listed(db)).toEqual(Object.fromEntries(before));
  expect(Object.fromEntries(await raise(db, ['a', 'b', 'c', 'd']))).toEqual({ a: 1, b: 2, c: 42, d: 2 ** 40 + 1 });
  // Twice in one batch (k = 2): the last of the two.
  expect(Object.fromEntries(await raise(db, ['c'], 2))).toEqual({ c: 44 });

  // A replica of the previous version, still running (a rolling upgrade), enrols hosts and raises
  // `hosts.generation` for them: their first raise here (or a hello's lift) goes on from there.
  for (const id of ['f', 'g']) await db.run('INSERT INTO hosts (id, name, public_key, labels, facts, enrolled_at) VALUES (?, ?, ?, ?, ?, ?)', [id, `name-${id}`, 'key', '{}', '{}', 0]);
  await db.run("UPDATE hosts SET generation = generation + 5 WHERE id IN ('f', 'g')");
  expect(Object.fromEntries(await raise(db, ['f']))).toEqual({ f: 6 });
  await db.tx((t) => liftGeneration(t, 'g', 3));
  expect(Object.fromEntries(await raise(db, ['g']))).toEqual({ g: 6 });

  // A hello reporting more (a restore) lifts it; reporting less or 0 leaves it.
  await db.tx((t) => liftGeneration(t, 'b', 100));
  await db.tx((t) => liftGeneration(t, 'c', 3));
  await db.tx((t) => liftGeneration(t, 'a', 0));
  expect(await listed(db)).toMatchObject({ a: 1, b: 100, c: 44 });
  // A host never assigned (enrolled after the upgrade): 0, then 1, and a hello lifts it too.
  await db.run('INSERT INTO hosts (id, name, public_key, labels, facts, enrolled_at) VALUES (?, ?, ?, ?, ?, ?)', ['e', 'name-e', 'key', '{}', '{}', 0]);
  expect((await listed(db)).e).toBe(0);
  await db.tx((t) => liftGeneration(t, 'e', 7));
  expect(Object.fromEntries(await raise(db, ['e']))).toEqual({ e: 8 });

  // Removal takes the generation with the row; the removed host is no longer raised (offline).
  expect(await removeHost(db, 'name-c', null)).toMatchObject({ outcome: 'removed', id: 'c' });
  expect(await db.query('SELECT host_id FROM host_generations WHERE host_id = ?', ['c'])).toEqual([]);
  expect(Object.fromEntries(await raise(db, ['c', 'd']))).toEqual({ d: 2 ** 40 + 2 });
  await db.tx((t) => liftGeneration(t, 'c', 50));
  expect(await db.query('SELECT host_id FROM host_generations WHERE host_id = ?', ['c'])).toEqual([]);
  // Its name enrolled again is a new host (a new id, a new agent state): from 0, as before.
  await db.run('INSERT INTO hosts (id, name, public_key, labels, facts, enrolled_at) VALUES (?, ?, ?, ?, ?, ?)', ['c2', 'name-c', 'key2', '{}', '{}', 0]);
  expect(Object.fromEntries(await raise(db, ['c2']))).toEqual({ c2: 1 });
  // Any other delete of a host row takes its generation too (the foreign key).
  await db.run('DELETE FROM hosts WHERE id = ?', ['d']);
  expect(await db.query('SELECT host_id FROM host_generations WHERE host_id = ?', ['d'])).toEqual([]);
}
