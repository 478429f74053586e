/**
 * SQLite transactions without AsyncLocalStorage (#14 target 8): the transaction's own statements
 * go through the handle `tx` gives, a `tx` on that handle joins it, statements from anywhere else
 * wait for its end (they never see it half-written nor become part of it), and a handle used after
 * its transaction ended fails instead of running outside it.
 */
import { describe, expect, it } from '@jest/globals';
import { openDb, type Db } from '../../../server/store/db.js';
import { migrate } from '../../../server/store/migrations.js';

const fresh = async () => {
  const db = await openDb({ sqlitePath: ':memory:' });
  await migrate(db);
  return db;
};
const insert = (d: Db, id: string) => d.run('INSERT INTO audit (id, time, kind, record) VALUES (?, 0, ?, ?)', [id, 'test', '{}']);
const ids = async (d: Db) => (await d.query<{ id: string }>('SELECT id FROM audit ORDER BY id')).map((r) => r.id);

describe('SQLite transactions', () => {
  it('joins a nested tx on the handle: one commit, one rollback', async () => {
    const db = await fresh();
    await db.tx(async (t) => {
      await insert(t, 'outer-1');
      await t.tx(async (n) => insert(n, 'nested-1'));
    });
    await expect(db.tx(async (t) => {
      await insert(t, 'outer-2');
      await t.tx(async (n) => insert(n, 'nested-2'));
      throw new Error('roll back both');
    })).rejects.toThrow('roll back both');
    // A nested tx that fails rolls back the whole transaction it joined.
    await expect(db.tx(async (t) => {
      await insert(t, 'outer-3');
      await t.tx(async () => {
        throw new Error('nested fails');
      });
    })).rejects.toThrow('nested fails');
    expect(await ids(db)).toEqual(['nested-1', 'outer-1']);
    await db.close();
  });

  it('makes statements from outside wait for the commit: they never see it half-written', async () => {
    const db = await fresh();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let step = '';
    const tx = db.tx(async (t) => {
      await insert(t, 'a');
      await gate;
      await insert(t, 'b');
      step = 'committing';
    });
    // Issued while the transaction is open between its two writes.
    const seen = ids(db).then((r) => ({ r, step }));
    const written = insert(db, 'c').then(() => step);
    await new Promise((r) => setTimeout(r, 20));
    release();
    await tx;
    expect(await seen).toEqual({ r: ['a', 'b'], step: 'committing' });
    expect(await written).toBe('committing');
    expect(await ids(db)).toEqual(['a', 'b', 'c']);
    await db.close();
  });

  it('keeps a write from outside out of a transaction that rolls back, and runs transactions one after the other', async () => {
    const db = await fresh();
    const order: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const failing = db.tx(async (t) => {
      order.push('first starts');
      await insert(t, 'rolled-back');
      await gate;
      order.push('first ends');
      throw new Error('roll back');
    });
    const plain = insert(db, 'plain');
    const second = db.tx(async (t) => {
      order.push('second starts');
      await insert(t, 'second');
    });
    await new Promise((r) => setTimeout(r, 20));
    release();
    await expect(failing).rejects.toThrow('roll back');
    await Promise.all([plain, second]);
    expect(order).toEqual(['first starts', 'first ends', 'second starts']);
    expect(await ids(db)).toEqual(['plain', 'second']);
    await db.close();
  });

  it('refuses a statement on the handle of a transaction that has ended', async () => {
    const db = await fresh();
    let leaked!: Db;
    await db.tx(async (t) => {
      leaked = t;
      await insert(t, 'inside');
    });
    await expect(insert(leaked, 'late')).rejects.toMatchObject({ code: 'USAGE' });
    await expect(leaked.tx(async (t) => insert(t, 'late-tx'))).rejects.toMatchObject({ code: 'USAGE' });
    // A handle leaked from a transaction that rolled back fails the same way.
    await db.tx(async (t) => {
      leaked = t;
      throw new Error('no');
    }).catch(() => undefined);
    await expect(leaked.query('SELECT 1')).rejects.toMatchObject({ code: 'USAGE' });
    expect(await ids(db)).toEqual(['inside']);
    await db.close();
  });
});
