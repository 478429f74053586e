/**
 * The storage seam: one small async interface with an SQLite and a PostgreSQL implementation,
 * so the rest of the server runs the same SQL on both. Statements use `?` placeholders; the
 * PostgreSQL adapter rewrites them to `$n`.
 */
export type Dialect = 'sqlite' | 'postgres';
export type Row = Record<string, unknown>;

export interface Db {
  readonly dialect: Dialect;
  query<T = Row>(sql: string, params?: unknown[]): Promise<T[]>;
  run(sql: string, params?: unknown[]): Promise<{ changes: number }>;
  /**
   * Runs `fn` in one transaction; on PostgreSQL on a dedicated connection. Its statements go
   * through the handle `fn` gets (a `tx` on it joins the transaction): a statement on the database
   * itself runs outside the transaction (PostgreSQL) or waits for its end (SQLite, one connection),
   * so a `fn` that waits for one of its own would never finish.
   */
  tx<T>(fn: (db: Db) => Promise<T>): Promise<T>;
  /** Wakes listeners of `channel` (PostgreSQL NOTIFY; in-process on SQLite). */
  notify(channel: string): Promise<void>;
  listen(channel: string, fn: () => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/** Whether a database URL names PostgreSQL (anything else: the embedded SQLite). */
export function isPostgresUrl(url: string | undefined): url is string {
  return url !== undefined && /^postgres(ql)?:/.test(url);
}

export async function openDb(opts: { databaseUrl?: string; sqlitePath?: string }): Promise<Db> {
  if (isPostgresUrl(opts.databaseUrl)) {
    const { openPostgres } = await import('./postgres.js');
    return openPostgres(opts.databaseUrl);
  }
  const { openSqlite } = await import('./sqlite.js');
  return openSqlite(opts.sqlitePath ?? ':memory:');
}
