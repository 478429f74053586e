import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MerkleTree, SqliteLogStore, canonicalEntry, verifyConsistency, verifyInclusion, type LogEntry } from '../../src/tlog/index.js';
import { D, entryN } from './fixtures.js';

describe('SQLite log store', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ct-tlog-store-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('matches the in-memory tree for every size while batches of odd lengths are appended', () => {
    const store = SqliteLogStore.open(join(dir, 'a.db'));
    const mem = new MerkleTree();
    let n = 0;
    for (const len of [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 1, 1, 300]) {
      const batch = Array.from({ length: len }, () => entryN(n++));
      expect(store.appendBatch(batch)).toBe(mem.size);
      for (const e of batch) mem.append(canonicalEntry(e));
      expect(store.size).toBe(mem.size);
      expect(store.root().equals(mem.root())).toBe(true);
    }
    for (const size of [1, 2, 7, 64, 65, 200, n]) {
      expect(store.root(size).equals(mem.root(size))).toBe(true);
      for (const i of [0, Math.floor(size / 2), size - 1]) {
        expect(store.inclusionProof(i, size)).toEqual(mem.inclusionProof(i, size));
        expect(verifyInclusion(mem.leaf(i), i, size, store.inclusionProof(i, size), mem.root(size))).toBe(true);
      }
      expect(verifyConsistency(size, n, store.consistencyProof(size, n), mem.root(size), mem.root())).toBe(true);
    }
    store.close();
  });

  it('appends a batch all or nothing', () => {
    const store = SqliteLogStore.open(join(dir, 'b.db'));
    store.appendBatch([entryN(1), entryN(2), entryN(3)]);
    const root = store.root();
    expect(() => store.appendBatch([entryN(4), { ...entryN(5), version: 2 }])).toThrow(expect.objectContaining({ code: 'LOG_ENTRY_INVALID' }));
    expect(store.size).toBe(3);
    expect(store.root().equals(root)).toBe(true);
    expect(store.appendBatch([entryN(4)])).toBe(3);
    store.close();
  });

  it('survives a failed transaction without corrupting its tree (a second writer is refused)', () => {
    const path = join(dir, 'c.db');
    const a = SqliteLogStore.open(path);
    const b = SqliteLogStore.open(path);
    a.appendBatch([entryN(1), entryN(2)]);
    // b still believes the log is empty: its insert of index 0 collides and rolls back.
    expect(() => b.appendBatch([entryN(9)])).toThrow();
    expect(b.size).toBe(0);
    b.close();
    expect(a.appendBatch([entryN(3)])).toBe(2);
    const reopened = SqliteLogStore.open(path);
    expect(reopened.root().equals(a.root())).toBe(true);
    a.close();
    reopened.close();
  });

  it('indexes revocations by digest and returns stored entries', () => {
    const store = SqliteLogStore.open(join(dir, 'd.db'));
    // One timestamp for every revocation: entryN's clock may cross a second between two calls.
    const at = entryN(0).timestamp;
    const rev = (n: number): LogEntry => ({ version: 1, timestamp: at, entryType: 'revocation', body: { revokedDigest: D(n), reason: 'unspecified', revokedBy: 'ops' } });
    store.appendBatch([entryN(1), rev(7), entryN(2), rev(8), rev(7)]);
    expect(store.revocationIndices()).toEqual([1, 3, 4]);
    expect(store.revocationIndices(D(7))).toEqual([1, 4]);
    expect(store.entry(3)?.entry).toEqual(rev(8));
    expect(store.entry(3)?.bytes.equals(canonicalEntry(rev(8)))).toBe(true);
    expect(store.entry(5)).toBeUndefined();
    store.close();
  });
});
