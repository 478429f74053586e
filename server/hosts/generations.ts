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
  // The WHERE keeps SQLite from reading the ON CONFLICT as a join's ON (its documented ambiguity).
  const rows = await t.query<{ host_id: string; generation: number }>(
    `INSERT INTO host_generations (host_id, generation) SELECT id, ? FROM hosts WHERE id IN (${hostIds.map(() => '?').join(', ')})
     ON CONFLICT (host_id) DO UPDATE SET generation = host_generations.generation + excluded.generation RETURNING host_id, generation`,
    [k, ...hostIds],
  );
  return new Map(rows.map((r) => [r.host_id, Number(r.generation)]));
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
