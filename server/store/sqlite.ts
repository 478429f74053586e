import Database from 'better-sqlite3';
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CtError } from '../../src/core/errors.js';
import type { Db, Row } from './db.js';

/**
 * A parameter as SQLite takes it (booleans as 0/1, undefined as NULL). A function of the module, not
 * a closure made per statement: a batch's statements map hundreds of parameters, and V8 compiled
 * such a closure again after every major GC (server/channel/within.ts).
 */
function sqliteParam(p: unknown): unknown {
  return typeof p === 'boolean' ? (p ? 1 : 0) : p === undefined ? null : p;
}

/** better-sqlite3 is synchronous: one connection, WAL, and transactions that cannot interleave. */
export function openSqlite(path: string): Db {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const sqlite = new Database(path);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('foreign_keys = ON');
  const bus = new EventEmitter();
  bus.setMaxListeners(0);
  // One connection: while a transaction is open (across awaits), every statement that does not
  // belong to it must wait, or it would become part of it and share its commit or rollback. Its
  // own statements go through the handle `tx` gives its function (as on PostgreSQL, where that
  // handle is the transaction's connection), and a `tx` on that handle joins it. This used to be
  // told apart with AsyncLocalStorage, which turns on promise hooks for the whole process: a few
  // per cent of the server's CPU on every promise, transaction or not (#14 target 8).
  let open: Promise<unknown> | null = null;
  let chain: Promise<unknown> = Promise.resolve();
  const outside = async () => {
    while (open) await open.catch(() => undefined);
  };

  // Statements are compiled once per SQL text (the server's SQL is a fixed set of strings):
  // preparing one costs more than running a small indexed query. Bounded all the same.
  const statements = new Map<string, Database.Statement>();
  const prepare = (sql: string): Database.Statement => {
    let stmt = statements.get(sql);
    if (!stmt) {
      stmt = sqlite.prepare(sql);
      if (statements.size >= 500) statements.clear();
      statements.set(sql, stmt);
    }
    return stmt;
  };
  const norm = (params: unknown[] = []) => params.map(sqliteParam);
  const query = <T>(sql: string, params?: unknown[]): T[] => {
    const stmt = prepare(sql);
    return (stmt.reader ? stmt.all(...norm(params)) : (stmt.run(...norm(params)), [])) as T[];
  };
  const run = (sql: string, params?: unknown[]) => ({ changes: prepare(sql).run(...norm(params)).changes });
  /** The handle of one open transaction; used after its end (a leaked handle) it fails, never runs outside it. */
  const handle = (): { t: Db; end: () => void } => {
    let live = true;
    const check = () => {
      if (!live) throw new CtError('USAGE', 'a statement on the handle of a transaction that has ended');
    };
    const t: Db = {
      ...db,
      async query<T = Row>(sql: string, params?: unknown[]) {
        check();
        return query<T>(sql, params);
      },
      async run(sql, params) {
        check();
        return run(sql, params);
      },
      async tx(fn) {
        check();
        return fn(t);
      },
      async close() {
        throw new CtError('USAGE', 'close the database, not a transaction');
      },
    };
    return { t, end: () => (live = false) };
  };
  const db: Db = {
    dialect: 'sqlite',
    async query<T = Row>(sql: string, params?: unknown[]) {
      if (open) await outside();
      return query<T>(sql, params);
    },
    async run(sql, params) {
      if (open) await outside();
      return run(sql, params);
    },
    async tx<T>(fn: (d: Db) => Promise<T>): Promise<T> {
      const next = chain.then(async () => {
        const { t, end } = handle();
        sqlite.exec('BEGIN IMMEDIATE');
        try {
          const out = await fn(t);
          sqlite.exec('COMMIT');
          return out;
        } catch (e) {
          sqlite.exec('ROLLBACK');
          throw e;
        } finally {
          end();
        }
      });
      const settled = next.catch(() => undefined).finally(() => {
        if (open === settled) open = null;
      });
      open = settled;
      chain = settled;
      return next;
    },
    async notify(channel) {
      queueMicrotask(() => bus.emit(channel));
    },
    async listen(channel, fn) {
      bus.on(channel, fn);
      return async () => void bus.off(channel, fn);
    },
    async close() {
      sqlite.close();
    },
  };
  return db;
}

/**
 * One server per data directory on SQLite: a second `ct serve` on the same directory (another
 * port) would share its database and its replica id, and take the first one's running jobs back
 * into its own queue. The lock is SQLite's own exclusive lock on `serve.lock`, held by a connection
 * kept open (locking_mode EXCLUSIVE, a write transaction never ended): the kernel drops it when the
 * process ends however it ends, so a crashed server leaves nothing to clean up. PostgreSQL replicas
 * share their database on purpose and take no such lock.
 */
export function lockDataDir(dir: string): { release(): void } {
  mkdirSync(dir, { recursive: true });
  const lock = new Database(join(dir, 'serve.lock'));
  try {
    lock.pragma('locking_mode = EXCLUSIVE');
    lock.exec('BEGIN EXCLUSIVE');
  } catch (e) {
    lock.close();
    if ((e as { code?: string }).code === 'SQLITE_BUSY') {
      throw new CtError('USAGE', `${dir} is in use by another ct serve: one server per data directory (set CT_DATA_DIR, or use PostgreSQL, DATABASE_URL, for several replicas)`, { path: dir });
    }
    throw e;
  }
  return { release: () => lock.close() };
}
