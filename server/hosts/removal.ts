import { randomUUID } from 'node:crypto';
import type { Db } from '../store/db.js';
import type { actor } from '../audit.js';
import { NAME } from '../../src/core/name.js';

/**
 * Channel every replica's hub listens on (server/channel/hub.ts): a host was removed, so whichever
 * replica holds its channel closes it and ends the deploys waiting for it.
 */
export const HOSTS_REMOVED_CHANNEL = 'ct_hosts_removed';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A host id or an enrolled name; anything else can name no host. */
export function hostRef(ref: string): boolean {
  return UUID.test(ref) || NAME.test(ref);
}

/**
 * Whether `ref` is shaped like a host id. Such a ref means an id only, never a name: a retried
 * DELETE of a removed host's id must not fall through to a live host named like that id. Enrolment
 * refuses such names for the same reason (server/routes/hosts.ts).
 */
export function idShaped(ref: string): boolean {
  return UUID.test(ref);
}

export type Removal =
  | { outcome: 'removed'; id: string; name: string }
  /** Removed before: nothing to do (DELETE is idempotent). */
  | { outcome: 'gone'; id: string; name: string }
  | { outcome: 'unknown' };

/**
 * Decommissions a host for good, in one transaction: its row moves to `hosts_removed` (its key no
 * longer authenticates anything: every check reads `hosts`), the bundles assigned to it and its
 * assignment generation are forgotten (a name enrolled again is a new host id, from generation 0),
 * the removal is audited with who asked, and the other replicas are told (HOSTS_REMOVED_CHANNEL).
 * The caller then closes its channel here (HostHub.removed).
 */
export async function removeHost(db: Db, ref: string, by: ReturnType<typeof actor>): Promise<Removal> {
  return db.tx(async (t) => {
    // A UUID-shaped ref is an id only: looked up in hosts, then among removed hosts, never as a name
    // (a host enrolled before names were refused that shape stays removable by its id).
    const byId = idShaped(ref);
    const [h] = await t.query<{ id: string; name: string; public_key: string; labels: string; enrolled_at: number }>(
      `SELECT id, name, public_key, labels, enrolled_at FROM hosts WHERE ${byId ? 'id = ?' : 'name = ?'}`, [ref],
    );
    if (!h) {
      // A name enrolled again after a removal names the live host (above); only then the old one.
      const [old] = await t.query<{ id: string; name: string }>(`SELECT id, name FROM hosts_removed WHERE ${byId ? 'id = ?' : 'name = ?'} ORDER BY removed_at DESC LIMIT 1`, [ref]);
      return old ? { outcome: 'gone' as const, id: old.id, name: old.name } : { outcome: 'unknown' as const };
    }
    const now = Date.now();
    // Only the transaction that deletes the row records the removal (two admins at once: one record).
    const deleted = await t.run('DELETE FROM hosts WHERE id = ?', [h.id]);
    if (deleted.changes !== 1) return { outcome: 'gone' as const, id: h.id, name: h.name };
    // Its generation (host_generations) goes with the row: the foreign key cascades.
    await t.run('INSERT INTO hosts_removed (id, name, public_key, labels, enrolled_at, removed_at, removed_by) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING', [
      h.id, h.name, h.public_key, h.labels, Number(h.enrolled_at), now, by ? JSON.stringify(by) : null,
    ]);
    await t.run('DELETE FROM host_bundles WHERE host_id = ?', [h.id]);
    await t.run('INSERT INTO audit (id, time, kind, subject, record) VALUES (?, ?, ?, ?, ?)', [
      randomUUID(), now, 'host.removed', h.name, JSON.stringify({ principal: by, host: h.name, hostId: h.id, labels: JSON.parse(String(h.labels)) as unknown }),
    ]);
    // Inside the transaction: PostgreSQL delivers a NOTIFY on commit, so a removal is never committed
    // without its notice (sent after the commit, a lost one left another replica's channel open).
    await t.notify(HOSTS_REMOVED_CHANNEL);
    return { outcome: 'removed' as const, id: h.id, name: h.name };
  });
}
