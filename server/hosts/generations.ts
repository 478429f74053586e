import type { Db } from '../store/db.js';

/**
 * Each host's assignment generation, in `host_generations` (one narrow row a host) rather than in
 * its `hosts` row: raising one number rewrote the whole wide row (facts, inventory) on every
 * assignment, most of the generations' transaction in a fleet-wide deploy (#14 target 8,
 * docs/performance.md "Round eight: the fleet — generation table").
 *
 * A host without a row is at generation 0 (what `hosts.generation` defaulted to). Rows are written
 * only for a host whose `hosts` row exists, in the same statement (a removed host gets none), and
 * go with it: host removal deletes its row in its transaction, and the foreign key cascades any
 * other delete of the host. `hosts.generation` is no longer read or written (see the migration).
 */

/** The generation a host's next hello and welcome start from (0 for a host never assigned). */
export const GENERATION_JOIN = 'LEFT JOIN host_generations g ON g.host_id = h.id';
export const GENERATION_OF = 'COALESCE(g.generation, 0)';

/**
 * Raises by `k` the generation of each of `hostIds` that is still enrolled, atomically per row
 * (run it in the caller's transaction), and answers each one's new value. Hosts absent from the
 * answer are not enrolled (removed).
 */
export async function raiseGenerations(t: Db, hostIds: string[], k: number): Promise<Map<string, number>> {
  const list = hostIds.map(() => '?').join(', ');
  // Hosts assigned before (every host of a redeploy): a plain UPDATE, the cheapest on both stores
  // (an upsert cost ~1.2 ms more per 200 hosts on PostgreSQL). A row here means a `hosts` row: the
  // foreign key deletes it with the host.
  const rows = await t.query<{ host_id: string; generation: number }>(
    `UPDATE host_generations SET generation = generation + ? WHERE host_id IN (${list}) RETURNING host_id, generation`, [k, ...hostIds],
  );
  const out = new Map(rows.map((r) => [r.host_id, Number(r.generation)]));
  const first = [...new Set(hostIds)].filter((id) => !out.has(id));
  if (first.length === 0) return out;
  // Padded to a power of two (as the caller's chunks): a few statement texts, each compiled once.
  for (let size = 1; ; size *= 2) if (size >= first.length) { while (first.length < size) first.push(first[0]); break; }
  // Never assigned yet (or removed: no `hosts` row, so nothing written). The upsert, not a plain
  // INSERT, for a row another replica made meanwhile; the WHERE keeps SQLite from reading the ON
  // CONFLICT as a join's ON (its documented ambiguity).
  const made = await t.query<{ host_id: string; generation: number }>(
    `INSERT INTO host_generations (host_id, generation) SELECT id, ? FROM hosts WHERE id IN (${first.map(() => '?').join(', ')})
     ON CONFLICT (host_id) DO UPDATE SET generation = host_generations.generation + excluded.generation RETURNING host_id, generation`,
    [k, ...first],
  );
  for (const r of made) out.set(r.host_id, Number(r.generation));
  return out;
}

/**
 * Lifts a host's generation to `generation` if it is below (a host that accepted more than this
 * database knows: a restore, a failover), never lowers it; nothing for a host not enrolled.
 */
export async function liftGeneration(t: Db, hostId: string, generation: number): Promise<void> {
  if (!(generation > 0)) return;
  await t.run(
    `INSERT INTO host_generations (host_id, generation) SELECT id, ? FROM hosts WHERE id = ?
     ON CONFLICT (host_id) DO UPDATE SET generation = excluded.generation WHERE host_generations.generation < excluded.generation`,
    [generation, hostId],
  );
}

/** Forgets a host's generation (host removal, in its transaction). */
export async function dropGeneration(t: Db, hostId: string): Promise<void> {
  await t.run('DELETE FROM host_generations WHERE host_id = ?', [hostId]);
}
