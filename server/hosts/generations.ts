import type { Db } from '../store/db.js';
import { chunks, placeholders } from '../store/chunks.js';

/**
 * Each host's assignment generation, in `host_generations` (one narrow row a host) rather than in
 * its `hosts` row: raising one number rewrote the whole wide row (facts, inventory) on every
 * assignment, most of the generations' transaction in a fleet-wide deploy (#14 target 8,
 * docs/performance.md "Round eight: the fleet — generation table").
 *
 * A host without a row is at its `hosts.generation` (0 for a host enrolled since, never assigned). Rows are written
 * only for a host whose `hosts` row exists, in the same statement (a removed host gets none), and
 * go with it: the foreign key cascades the delete of the host (removal, or any other). This version
 * no longer writes `hosts.generation`; it reads it only to seed a host's first row (see the
 * migration: a replica of the previous version may still raise it during a rolling upgrade).
 */

/**
 * PostgreSQL's lock statements take ids in the order the batch was sorted in (JS: by UTF-16 code
 * unit, the same as bytes for the ids' ASCII), whatever the database's collation: two batches
 * then lock any ids in one order.
 */
const BY_CODE_UNIT = 'COLLATE "C"';

/**
 * A host's first row is read from its `hosts` row under FOR KEY SHARE on PostgreSQL: a removal
 * deleting that row, uncommitted, is waited for and the host skipped (written, its foreign key
 * failed once the removal committed: 23503 failed the whole batch, or the hello that lifted it).
 * SQLite writes one transaction at a time: nothing is deleted under a statement.
 */
const KEY_SHARE = 'FOR KEY SHARE';

/** A host's generation (`hosts` as `h`), as its first raise goes on from it (see raiseGenerations). */
export const GENERATION_JOIN = 'LEFT JOIN host_generations g ON g.host_id = h.id';
export const GENERATION_OF = 'COALESCE(g.generation, h.generation)';

/**
 * `ids` not in `set`: a loop of the module, not a closure made per call over every host of a batch
 * (server/channel/within.ts says why).
 */
function without(ids: readonly string[], set: ReadonlySet<string> | ReadonlyMap<string, unknown>): string[] {
  const out: string[] = [];
  for (const id of ids) if (!set.has(id)) out.push(id);
  return out;
}

/**
 * Raises the generation of each host of `times` that is still enrolled by its count there (the
 * assignments it got in the batch), atomically per row (run it in the caller's transaction, through
 * txRetrying), and answers each one's new value. Hosts absent from the answer are not enrolled
 * (removed).
 *
 * Two such transactions (two batches, two replicas) raising overlapping hosts each lock their rows
 * as they go: in scan order they deadlocked, and PostgreSQL aborted one (40P01). On PostgreSQL the
 * rows are locked first, in host id order across the whole batch, so that each waits for the
 * other instead; a first raise of two hosts at once still may (rows inserted by both, rare), and
 * txRetrying runs it again.
 *
 * With `busy` (PostgreSQL), a host whose row another transaction holds is not waited for: the
 * locks are taken SKIP LOCKED, and such a host is left out (not raised) and listed in `busy`, for
 * the caller to wait for apart (a row another transaction is inserting, uncommitted, is still
 * waited for by the insert below, within the caller's lock_timeout). One host's row held elsewhere then no longer fails (lock_timeout) the
 * raise of every other host of the batch.
 */
export async function raiseGenerations(t: Db, times: ReadonlyMap<string, number>, busy?: string[]): Promise<Map<string, number>> {
  const pg = t.dialect === 'postgres';
  const skip = pg && busy !== undefined ? ' SKIP LOCKED' : '';
  // Of `ids` not locked here, those with a row: held by another transaction, listed in `busy`.
  const heldOf = async (ids: string[]): Promise<Set<string>> => {
    const held = new Set<string>();
    for (const chunk of chunks(ids)) {
      const rows = await t.query<{ host_id: string }>(`SELECT host_id FROM host_generations WHERE host_id IN (${placeholders(chunk.length)})`, chunk);
      for (const r of rows) held.add(r.host_id);
    }
    busy?.push(...held);
    return held;
  };
  const sorted = [...times.keys()].sort();
  // Hosts by how many assignments they got (nearly always all 1): one statement per count and chunk.
  const byCount = new Map<number, string[]>();
  for (const hostId of sorted) {
    const k = times.get(hostId)!;
    const same = byCount.get(k);
    if (same) same.push(hostId);
    else byCount.set(k, [hostId]);
  }
  // One count (the usual batch): each chunk's UPDATE locks its rows itself, in id order (below);
  // else they are all locked first, the counts' statements then taking hosts out of order.
  const lockInUpdate = pg && byCount.size === 1;
  let held = new Set<string>();
  if (pg && !lockInUpdate) {
    const got = new Set<string>();
    for (const chunk of chunks(sorted)) {
      const rows = await t.query<{ host_id: string }>(`SELECT host_id FROM host_generations WHERE host_id IN (${placeholders(chunk.length)}) ORDER BY host_id ${BY_CODE_UNIT} FOR UPDATE${skip}`, chunk);
      for (const r of rows) got.add(r.host_id);
    }
    if (skip) held = await heldOf(without(sorted, got));
  }
  const out = new Map<string, number>();
  for (const [k, all] of byCount) {
    const hosts = held.size === 0 ? all : without(all, held);
    // Hosts assigned before (every host of a redeploy): a plain UPDATE, the cheapest on both stores
    // (an upsert cost ~1.2 ms more per 200 hosts on PostgreSQL). A row here means a `hosts` row:
    // the foreign key deletes it with the host.
    for (const chunk of chunks(hosts)) {
      const list = placeholders(chunk.length);
      // The lock order in the statement (a second one cost ~1 ms a 200-host batch on PostgreSQL).
      const rows = await t.query<{ host_id: string; generation: number }>(lockInUpdate
        ? `WITH locked AS (SELECT host_id FROM host_generations WHERE host_id IN (${list}) ORDER BY host_id ${BY_CODE_UNIT} FOR UPDATE${skip})
           UPDATE host_generations g SET generation = g.generation + ? FROM locked WHERE g.host_id = locked.host_id RETURNING g.host_id, g.generation`
        : `UPDATE host_generations SET generation = generation + ? WHERE host_id IN (${list}) RETURNING host_id, generation`,
      lockInUpdate ? [...chunk, k] : [k, ...chunk]);
      for (const r of rows) out.set(r.host_id, Number(r.generation));
    }
    let first = without(hosts, out);
    // Skipped by the UPDATE's lock: a host with no row yet, or one held elsewhere (left out). Only
    // a first raise (or a held host) costs this statement; a redeploy's hosts all have their rows.
    if (skip && lockInUpdate && first.length > 0) {
      const busyHere = await heldOf(first);
      first = without(first, busyHere);
    }
    // Never raised here yet (or removed: no `hosts` row, so nothing written). Seeded from
    // `hosts.generation`: a replica of the previous version may still have raised it after the
    // migration copied it. The upsert, not a plain INSERT, for a row another replica made
    // meanwhile; the WHERE keeps SQLite from reading the ON CONFLICT as a join's ON (its documented
    // ambiguity); in id order, as the locks above. KEY_SHARE: a host being removed is skipped.
    for (const chunk of chunks(first)) {
      const made = await t.query<{ host_id: string; generation: number }>(
        `INSERT INTO host_generations (host_id, generation) SELECT id, generation + ? FROM hosts WHERE id IN (${placeholders(chunk.length)}) ORDER BY id${pg ? ` ${BY_CODE_UNIT} ${KEY_SHARE}` : ''}
         ON CONFLICT (host_id) DO UPDATE SET generation = host_generations.generation + ? RETURNING host_id, generation`,
        [k, ...chunk, k],
      );
      for (const r of made) out.set(r.host_id, Number(r.generation));
    }
  }
  return out;
}

/**
 * Lifts a host's generation to `generation` if it is below (a host that accepted more than this
 * database knows: a restore, a failover, a replica of the previous version that raised
 * `hosts.generation`), never lowers it; nothing for a host not enrolled. A host without a row
 * starts from the higher of the two and `hosts.generation`.
 */
export async function liftGeneration(t: Db, hostId: string, generation: number): Promise<void> {
  if (!(generation > 0)) return;
  await t.run(
    `INSERT INTO host_generations (host_id, generation) SELECT id, CASE WHEN generation > ? THEN generation ELSE ? END FROM hosts WHERE id = ?${t.dialect === 'postgres' ? ` ${KEY_SHARE}` : ''}
     ON CONFLICT (host_id) DO UPDATE SET generation = ? WHERE host_generations.generation < ?`,
    [generation, generation, hostId, generation, generation],
  );
}
