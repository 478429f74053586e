import Database from 'better-sqlite3';
import type { CheckpointMemory, RememberedCheckpoint } from './witness.js';

type Db = InstanceType<typeof Database>;

/**
 * Checkpoint memory in an SQLite table, for the server and hosts (which already keep SQLite
 * state). Accepts an open database (shares its connection) or a file path.
 */
export class SqliteCheckpointMemory implements CheckpointMemory {
  private readonly db: Db;
  private readonly owned: boolean;

  constructor(dbOrPath: Db | string) {
    this.owned = typeof dbOrPath === 'string';
    this.db = typeof dbOrPath === 'string' ? new Database(dbOrPath) : dbOrPath;
    if (this.owned) this.db.pragma('journal_mode = WAL');
    this.db.exec(`CREATE TABLE IF NOT EXISTS tlog_checkpoints (
      log_id TEXT PRIMARY KEY, origin TEXT NOT NULL, tree_size INTEGER NOT NULL, root_hash TEXT NOT NULL, seen_at TEXT NOT NULL)`);
  }

  async get(logId: string): Promise<RememberedCheckpoint | undefined> {
    const row = this.db.prepare('SELECT origin, tree_size AS treeSize, root_hash AS rootHash, seen_at AS seenAt FROM tlog_checkpoints WHERE log_id = ?').get(logId) as
      | RememberedCheckpoint
      | undefined;
    return row ? { ...row } : undefined;
  }

  async put(logId: string, cp: RememberedCheckpoint): Promise<void> {
    this.db
      .prepare(`INSERT INTO tlog_checkpoints (log_id, origin, tree_size, root_hash, seen_at) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT(log_id) DO UPDATE SET origin = excluded.origin, tree_size = excluded.tree_size, root_hash = excluded.root_hash, seen_at = excluded.seen_at`)
      .run(logId, cp.origin, cp.treeSize, cp.rootHash, cp.seenAt);
  }

  close(): void {
    if (this.owned) this.db.close();
  }
}
