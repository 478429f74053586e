import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import Database from 'better-sqlite3';
import { CtError, asIoError } from '../core/errors.js';
import { canonicalBytes } from '../core/jcs.js';
import { spkiBase64 } from '../trust/keyid.js';
import { consistencyProof, inclusionProof, rootAt, type NodeSource, type RangeMemo } from './build-proofs.js';
import { assertLogEntry, type LogEntry } from './entry.js';
import { leafHash } from './hashes.js';
import { isNoteKeyName } from './signed-note.js';
import { Frontier } from './tree.js';

type Db = InstanceType<typeof Database>;

export interface LogStoreOptions {
  /** Log signing key; when absent, the key stored in the db (generated on first open) is used. */
  privateKey?: KeyObject;
  logId?: string;
  origin?: string;
  operator?: string;
}

export interface StoredEntry {
  index: number;
  bytes: Buffer;
  entry: LogEntry;
}

/*
 * Node rows are keyed by one integer: (index of the last leaf the subtree covers) · 64 + level.
 * That key grows in the order appends complete subtrees, so every insert lands at the end of
 * the B-tree (no page splits in the middle), and a lookup is one rowid probe.
 */
const nodeKey = (level: number, index: number): number => ((index + 1) * 2 ** level - 1) * 64 + level;

const NODE_CACHE_MAX = 1 << 16;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (idx INTEGER PRIMARY KEY, entry_type TEXT NOT NULL, entry BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (k INTEGER PRIMARY KEY, hash BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS revocations (digest TEXT NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY (digest, idx)) WITHOUT ROWID;
`;

/**
 * The log's storage: entries, every perfect subtree hash (so any proof is O(log n) primary-key
 * lookups), revocation index, and the log identity. One writer: better-sqlite3 is synchronous,
 * and every batch is one transaction, so a batch is either fully in the tree or not at all.
 */
export class SqliteLogStore implements NodeSource {
  readonly logId: string;
  readonly origin: string;
  readonly operator: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  private frontier: Frontier;
  /**
   * Recently written or read subtree hashes. Proofs for fresh appends touch mostly nodes just
   * written, and every proof touches the same few high nodes; this keeps the append path from
   * spending its time in SQLite lookups. FIFO-bounded (a Map iterates in insertion order).
   */
  private readonly nodeCache = new Map<number, Buffer>();
  private cachedRoot: { size: number; root: Buffer } | undefined;
  private readonly st: {
    getNode: Database.Statement;
    putNode: Database.Statement;
    putEntry: Database.Statement;
    getEntry: Database.Statement;
    putRevocation: Database.Statement;
  };

  private constructor(private readonly db: Db, opts: LogStoreOptions) {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec(SCHEMA);
    const meta = (k: string): string | undefined => (db.prepare('SELECT v FROM meta WHERE k = ?').pluck().get(k) as string | undefined) ?? undefined;
    // Identity is written only once everything is validated, in one transaction.
    const writes: [string, string][] = [];
    const size = (db.prepare('SELECT COALESCE(MAX(idx) + 1, 0) FROM entries').pluck().get() as number) ?? 0;

    let privateKey = opts.privateKey;
    if (!privateKey) {
      const pem = meta('private_key');
      privateKey = pem ? createPrivateKey(pem) : generateKeyPairSync('ed25519').privateKey;
      if (!pem) writes.push(['private_key', privateKey.export({ type: 'pkcs8', format: 'pem' }) as string]);
    }
    if (privateKey.asymmetricKeyType !== 'ed25519') throw new CtError('KEY_INVALID', `log key must be Ed25519, not ${privateKey.asymmetricKeyType}`);
    this.privateKey = privateKey;
    this.publicKey = createPublicKey(privateKey);
    const spki = spkiBase64(this.publicKey);
    const storedSpki = meta('public_key');
    if (storedSpki && storedSpki !== spki && size > 0) {
      throw new CtError('KEY_INVALID', `this log database was written with another log key (${storedSpki}); refusing to sign its ${size} entries with a new one`);
    }
    writes.push(['public_key', spki]);

    const defaultId = `ct-log-${Buffer.from(spki, 'base64').subarray(-32).toString('hex').slice(0, 16)}`;
    this.logId = opts.logId ?? meta('log_id') ?? defaultId;
    this.origin = opts.origin ?? meta('origin') ?? this.logId;
    this.operator = opts.operator ?? meta('operator') ?? this.logId;
    if (!isNoteKeyName(this.origin)) {
      throw new CtError('USAGE', `log origin ${JSON.stringify(this.origin)} cannot name a checkpoint key: it must be non-empty, without spaces or "+"`);
    }
    writes.push(['log_id', this.logId], ['origin', this.origin], ['operator', this.operator]);
    const setMeta = db.prepare('INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v');
    db.transaction(() => writes.forEach(([k, v]) => setMeta.run(k, v)))();

    this.st = {
      getNode: db.prepare('SELECT hash FROM nodes WHERE k = ?').pluck(),
      putNode: db.prepare('INSERT INTO nodes (k, hash) VALUES (?, ?)'),
      putEntry: db.prepare('INSERT INTO entries (idx, entry_type, entry) VALUES (?, ?, ?)'),
      getEntry: db.prepare('SELECT entry FROM entries WHERE idx = ?').pluck(),
      putRevocation: db.prepare('INSERT OR IGNORE INTO revocations (digest, idx) VALUES (?, ?)'),
    };
    this.frontier = Frontier.fromSource({ size, node: (l, i) => this.node(l, i) }, size);
  }

  static open(path: string, opts: LogStoreOptions = {}): SqliteLogStore {
    let db: Db;
    try {
      db = new Database(path);
    } catch (e) {
      throw asIoError(e, path);
    }
    try {
      return new SqliteLogStore(db, opts);
    } catch (e) {
      db.close();
      throw e instanceof CtError ? e : asIoError(e, path);
    }
  }

  get size(): number {
    return this.frontier.size;
  }

  node(level: number, index: number): Buffer {
    const key = nodeKey(level, index);
    const cached = this.nodeCache.get(key);
    if (cached) return cached;
    const h = this.st.getNode.get(key) as Buffer | undefined;
    if (!h) throw new CtError('IO_ERROR', `log database lacks the subtree hash at level ${level}, index ${index}`, { level, index });
    this.remember(key, h);
    return h;
  }

  private remember(key: number, h: Buffer): void {
    if (this.nodeCache.size >= NODE_CACHE_MAX) {
      const it = this.nodeCache.keys();
      for (let i = 0; i < NODE_CACHE_MAX / 4; i++) this.nodeCache.delete(it.next().value as number);
    }
    this.nodeCache.set(key, h);
  }

  /**
   * Validates, canonicalises and appends entries in one transaction; returns the index of the
   * first. Nothing is appended when any entry is invalid.
   */
  appendBatch(entries: readonly unknown[]): number {
    const rows = entries.map((e, i) => {
      assertLogEntry(e, `entries[${i}]`);
      return { entry: e, bytes: canonicalBytes(e) };
    });
    return this.appendCanonical(rows);
  }

  /** Appends already-validated entries with their canonical bytes (the server's hot path). */
  appendCanonical(rows: readonly { entry: LogEntry; bytes: Buffer }[]): number {
    const first = this.size;
    const next = this.frontier.clone();
    const written: [number, Buffer][] = [];
    this.db.transaction(() => {
      for (const { entry, bytes } of rows) {
        const index = next.size;
        this.st.putEntry.run(index, entry.entryType, bytes);
        if (entry.entryType === 'revocation') this.st.putRevocation.run(entry.body.revokedDigest, index);
        for (const n of next.append(leafHash(bytes))) {
          const key = nodeKey(n.level, n.index);
          this.st.putNode.run(key, n.hash);
          if (rows.length <= NODE_CACHE_MAX / 8) written.push([key, n.hash]);
        }
      }
    })();
    // Only after the commit: a rolled-back batch must leave no trace in the cache either.
    for (const [k, h] of written) this.remember(k, h);
    this.frontier = next;
    this.cachedRoot = undefined;
    return first;
  }

  entry(index: number): StoredEntry | undefined {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.size) return undefined;
    const bytes = this.st.getEntry.get(index) as Buffer | undefined;
    if (!bytes) return undefined;
    return { index, bytes, entry: JSON.parse(bytes.toString('utf8')) as LogEntry };
  }

  root(treeSize = this.size): Buffer {
    if (treeSize !== this.size) return rootAt(this, treeSize);
    if (this.cachedRoot?.size !== treeSize) this.cachedRoot = { size: treeSize, root: this.frontier.root() };
    return this.cachedRoot.root;
  }

  inclusionProof(index: number, treeSize = this.size, memo?: RangeMemo): Buffer[] {
    return inclusionProof(this, index, treeSize, memo);
  }

  consistencyProof(size1: number, size2 = this.size): Buffer[] {
    return consistencyProof(this, size1, size2);
  }

  /** Log indices of revocation entries, optionally only those revoking `digest`. */
  revocationIndices(digest?: string): number[] {
    const q = digest === undefined
      ? this.db.prepare('SELECT idx FROM revocations ORDER BY idx').pluck()
      : this.db.prepare('SELECT idx FROM revocations WHERE digest = ? ORDER BY idx').pluck();
    return (digest === undefined ? q.all() : q.all(digest)) as number[];
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
