import { CtError } from '../core/errors.js';
import { canonicalBytes } from '../core/jcs.js';
import { signCheckpoint } from './checkpoint.js';
import { assertLogEntry, isRfc3339, rfc3339Now, type LogEntry } from './entry.js';
import type { InclusionProofJson, LogEntryRecord } from './record.js';
import { signSet } from './set.js';
import { signTreeHead, type SignedTreeHead } from './sth.js';
import type { SqliteLogStore } from './store.js';

/**
 * The log's operations, independent of HTTP: the server maps requests onto these and CtErrors
 * onto status codes. Appends are group-committed: entries that arrive while the event loop is
 * busy are written in one transaction on the next turn, which is what lets many concurrent
 * clients share one SQLite writer.
 */
export interface LogApiOptions {
  /** Largest accepted distance between an entry's timestamp and the log's clock (default 600 s). */
  maxSkewSeconds?: number;
  /** Largest batch written in one transaction (default 1000). */
  maxBatch?: number;
  now?: () => number;
}

interface Pending {
  entry: LogEntry;
  bytes: Buffer;
  resolve: (r: LogEntryRecord) => void;
  reject: (e: unknown) => void;
}

export class LogApi {
  private pending: Pending[] = [];
  private scheduled = false;
  private sthCache: { size: number; sth: SignedTreeHead } | undefined;
  private noteCache: { size: number; note: string } | undefined;
  private readonly maxSkewMs: number;
  private readonly maxBatch: number;
  private readonly now: () => number;

  constructor(readonly store: SqliteLogStore, opts: LogApiOptions = {}) {
    this.maxSkewMs = (opts.maxSkewSeconds ?? 600) * 1000;
    this.maxBatch = opts.maxBatch ?? 1000;
    this.now = opts.now ?? Date.now;
  }

  /**
   * Validates a submitted entry and queues it. A body without `timestamp` is stamped with the
   * log's clock; a given timestamp must be within the skew window, because it becomes the
   * record's `integratedTime` (bundles carry no entry, verifiers rebuild it from that time).
   */
  submit(body: unknown): Promise<LogEntryRecord> {
    if (typeof body === 'object' && body !== null && !Array.isArray(body) && !('timestamp' in body)) {
      body = { ...body, timestamp: rfc3339Now(this.now()) };
    }
    assertLogEntry(body);
    const entry = body;
    if (isRfc3339(entry.timestamp) && Math.abs(Date.parse(entry.timestamp) - this.now()) > this.maxSkewMs) {
      throw new CtError('LOG_ENTRY_INVALID', `entry: timestamp ${entry.timestamp} is more than ${this.maxSkewMs / 1000} s from the log's clock`, {
        problems: [{ path: 'timestamp', message: 'outside the accepted clock skew' }],
      });
    }
    return new Promise((resolve, reject) => {
      this.pending.push({ entry, bytes: canonicalBytes(entry), resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, this.maxBatch);
      let first: number;
      try {
        first = this.store.appendCanonical(batch);
      } catch (e) {
        for (const p of batch) p.reject(e);
        continue;
      }
      const size = this.store.size;
      const root = this.store.root(size).toString('hex');
      const memo = new Map<string, Buffer>();
      batch.forEach((p, i) => {
        try {
          p.resolve(this.record(first + i, p.entry, p.bytes, size, root, memo));
        } catch (e) {
          p.reject(e);
        }
      });
    }
  }

  private record(index: number, entry: LogEntry, bytes: Buffer, size: number, rootHex: string, memo?: Map<string, Buffer>): LogEntryRecord {
    return {
      logId: this.store.logId,
      logIndex: index,
      integratedTime: entry.timestamp,
      inclusionProof: { logIndex: index, rootHash: rootHex, treeSize: size, hashes: this.store.inclusionProof(index, size, memo).map((h) => h.toString('hex')) },
      signedEntryTimestamp: signSet(bytes, this.store.privateKey),
    };
  }

  private checkIndex(n: number, what: string, max: number): number {
    if (!Number.isSafeInteger(n) || n < 0 || n > max) throw new CtError('USAGE', `${what} must be an integer between 0 and ${max}`, { [what]: n });
    return n;
  }

  proof(logIndex: number, treeSize?: number): InclusionProofJson {
    const size = treeSize === undefined ? this.store.size : this.checkIndex(treeSize, 'treeSize', this.store.size);
    if (size === 0) throw new CtError('USAGE', 'the log is empty');
    this.checkIndex(logIndex, 'logIndex', size - 1);
    return {
      logIndex,
      rootHash: this.store.root(size).toString('hex'),
      treeSize: size,
      hashes: this.store.inclusionProof(logIndex, size).map((h) => h.toString('hex')),
    };
  }

  consistency(first: number, second?: number): { first: number; second: number; firstRootHash: string; secondRootHash: string; hashes: string[] } {
    const s2 = second === undefined ? this.store.size : this.checkIndex(second, 'second', this.store.size);
    const s1 = this.checkIndex(first, 'first', s2);
    return {
      first: s1,
      second: s2,
      firstRootHash: this.store.root(s1).toString('hex'),
      secondRootHash: this.store.root(s2).toString('hex'),
      hashes: this.store.consistencyProof(s1, s2).map((h) => h.toString('hex')),
    };
  }

  sth(): SignedTreeHead {
    const size = this.store.size;
    if (this.sthCache?.size !== size) {
      this.sthCache = { size, sth: signTreeHead({ treeSize: size, timestamp: rfc3339Now(this.now()), rootHash: this.store.root(size).toString('hex') }, this.store.privateKey) };
    }
    return this.sthCache.sth;
  }

  checkpoint(): string {
    const size = this.store.size;
    if (this.noteCache?.size !== size) {
      const note = signCheckpoint({ origin: this.store.origin, treeSize: size, rootHash: this.store.root(size) }, this.store.origin, this.store.privateKey);
      this.noteCache = { size, note };
    }
    return this.noteCache.note;
  }

  /** One entry with its record (proof against the current tree) and the entry itself. */
  entry(index: number): LogEntryRecord & { entry: LogEntry } {
    const size = this.store.size;
    if (size === 0) throw new CtError('USAGE', 'the log is empty');
    this.checkIndex(index, 'index', size - 1);
    const stored = this.store.entry(index);
    if (!stored) throw new CtError('IO_ERROR', `entry ${index} is missing from the log database`);
    return { ...this.record(index, stored.entry, stored.bytes, size, this.store.root(size).toString('hex')), entry: stored.entry };
  }

  revocations(digest?: string): { logId: string; treeSize: number; rootHash: string; revocations: (LogEntryRecord & { entry: LogEntry })[] } {
    const size = this.store.size;
    return {
      logId: this.store.logId,
      treeSize: size,
      rootHash: this.store.root(size).toString('hex'),
      revocations: this.store.revocationIndices(digest).map((i) => this.entry(i)),
    };
  }
}
