import Database from 'better-sqlite3';
import { AsyncLocalStorage } from 'node:async_hooks';
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Db, Row } from './db.js';

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
  // belong to it must wait, or it would become part of it and share its commit or rollback.
  // AsyncLocalStorage tells the transaction's own statements (and nested tx calls) from others'.
  const inTx = new AsyncLocalStorage<true>();
  let open: Promise<unknown> | null = null;
  let chain: Promise<unknown> = Promise.resolve();
  const outside = async () => {
    while (open && !inTx.getStore()) await open.catch(() => undefined);
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
  const norm = (params: unknown[] = []) => params.map((p) => (typeof p === 'boolean' ? (p ? 1 : 0) : p === undefined ? null : p));
  const db: Db = {
    dialect: 'sqlite',
    async query<T = Row>(sql: string, params?: unknown[]) {
      await outside();
      const stmt = prepare(sql);
      return (stmt.reader ? stmt.all(...norm(params)) : (stmt.run(...norm(params)), [])) as T[];
    },
    async run(sql, params) {
      await outside();
      return { changes: prepare(sql).run(...norm(params)).changes };
    },
    async tx<T>(fn: (d: Db) => Promise<T>): Promise<T> {
      if (inTx.getStore()) return fn(db);
      const next = chain.then(() =>
        inTx.run(true, async () => {
          sqlite.exec('BEGIN IMMEDIATE');
          try {
            const out = await fn(db);
            sqlite.exec('COMMIT');
            return out;
          } catch (e) {
            sqlite.exec('ROLLBACK');
            throw e;
          }
        }),
      );
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
