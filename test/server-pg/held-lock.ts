import type { Db } from '../../server/store/db.js';

/**
 * Runs `sql` (a locking statement) in a transaction of `db` that stays open, its locks held, until
 * release(): another replica's transaction, or a wedged connection, as the code under test meets it.
 */
export async function heldLock(db: Db, sql: string, params: unknown[]): Promise<{ release(): Promise<void> }> {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let locked!: () => void;
  const isLocked = new Promise<void>((r) => (locked = r));
  const holder = db.tx(async (t) => {
    await t.query(sql, params);
    locked();
    await released;
  });
  await Promise.race([isLocked, holder]);
  return {
    async release() {
      release();
      await holder;
    },
  };
}
