// The log server end to end on 127.0.0.1: appends, proofs, tree heads, checkpoints, growth,
// restarts, revocations and hostile requests.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { publicKeyFrom } from '../../src/trust/keyid.js';
import {
  canonicalEntry,
  fetchCheckpoint,
  fetchConsistencyProof,
  fetchRevocations,
  hashFromHex,
  leafHash,
  startLogServer,
  verifyCheckpoint,
  verifyConsistency,
  verifyInclusion,
  verifyLogEntryRecord,
  verifyTreeHead,
  type LogEntry,
  type LogEntryRecord,
  type LogServer,
} from '../../src/tlog/index.js';
import { D, entryN, now } from './fixtures.js';

// Answers are arbitrary JSON that each test picks apart; typing every shape adds nothing here.
/* eslint-disable @typescript-eslint/no-explicit-any */
async function post(url: string, body: string, headers: Record<string, string> = {}): Promise<{ status: number; json: any }> {
  const res = await fetch(`${url}/api/v1/entries`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  return { status: res.status, json: await res.json() };
}
async function get(url: string, path: string): Promise<{ status: number; json: any }> {
  const res = await fetch(`${url}${path}`);
  return { status: res.status, json: await res.json() };
}
/* eslint-enable @typescript-eslint/no-explicit-any */
const hx = (hs: string[]): Buffer[] => hs.map((h) => hashFromHex(h)!);

describe('log server', () => {
  let dir: string;
  let log: LogServer;
  let key: KeyObject;
  const appended: { entry: LogEntry; record: LogEntryRecord }[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ct-tlog-'));
    log = await startLogServer({ db: join(dir, 'log.db'), logId: 'test-log', operator: 'Test Operator', maxBodyBytes: 4096 });
    key = publicKeyFrom(log.publicKey);
  });
  afterAll(async () => {
    await log?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('announces a usable identity', () => {
    expect(log.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(log.logId).toBe('test-log');
    expect(log.operator).toBe('Test Operator');
    expect(key.asymmetricKeyType).toBe('ed25519');
  });

  it('appends entries concurrently; each answer is a verifiable bundle record', async () => {
    const entries = Array.from({ length: 40 }, (_, i) => entryN(i));
    const answers = await Promise.all(entries.map((e) => post(log.url, JSON.stringify(e))));
    answers.forEach((a, i) => {
      expect(a.status).toBe(201);
      expect(Object.keys(a.json).sort()).toEqual(['inclusionProof', 'integratedTime', 'logId', 'logIndex', 'signedEntryTimestamp']);
      expect(a.json.integratedTime).toBe(entries[i].timestamp);
      expect(verifyLogEntryRecord(a.json, canonicalEntry(entries[i]), { operator: log.operator, publicKey: log.publicKey })).toMatchObject({ ok: true });
      appended.push({ entry: entries[i], record: a.json });
    });
    expect(new Set(answers.map((a) => a.json.logIndex)).size).toBe(40);
  });

  it('stamps an entry sent without timestamp and reports the stamp as integratedTime', async () => {
    const { timestamp: _t, ...bare } = entryN(99);
    const a = await post(log.url, JSON.stringify(bare));
    expect(a.status).toBe(201);
    const logged = { ...bare, timestamp: a.json.integratedTime } as LogEntry;
    expect(verifyLogEntryRecord(a.json, canonicalEntry(logged), { operator: '', publicKey: key })).toMatchObject({ ok: true });
    appended.push({ entry: logged, record: a.json });
  });

  it('serves inclusion proofs for any index at the current and at an older tree size', async () => {
    const size = appended.length;
    for (const i of [0, 7, 20, size - 1]) {
      const { entry, record } = appended.find((x) => x.record.logIndex === i)!;
      const p = await get(log.url, `/api/v1/proof?logIndex=${i}`);
      expect(p.status).toBe(200);
      expect(p.json.treeSize).toBe(size);
      expect(verifyInclusion(leafHash(canonicalEntry(entry)), i, size, hx(p.json.hashes), hashFromHex(p.json.rootHash)!)).toBe(true);
      // the proof at the size the append reported, against the root reported then
      const old = await get(log.url, `/api/v1/proof?logIndex=${i}&treeSize=${record.inclusionProof.treeSize}`);
      expect(old.json.rootHash).toBe(record.inclusionProof.rootHash);
    }
  });

  it('signs tree heads and checkpoints that agree with the proofs', async () => {
    const sth = (await get(log.url, '/api/v1/sth')).json;
    expect(Object.keys(sth).sort()).toEqual(['rootHash', 'signature', 'timestamp', 'treeSize']);
    expect(verifyTreeHead(sth, key)).toBe(true);
    expect(verifyTreeHead({ ...sth, treeSize: sth.treeSize + 1 }, key)).toBe(false);
    const note = await fetchCheckpoint(log.url);
    const cp = verifyCheckpoint(note, log.origin, key, log.origin);
    expect(cp.treeSize).toBe(sth.treeSize);
    expect(cp.rootHash.toString('hex')).toBe(sth.rootHash);
    expect(() => verifyCheckpoint(note, log.origin, generateKeyPairSync('ed25519').publicKey)).toThrow();
  });

  it('proves consistency across growth', async () => {
    const before = verifyCheckpoint(await fetchCheckpoint(log.url), log.origin, key);
    for (let i = 0; i < 13; i++) expect((await post(log.url, JSON.stringify(entryN(500 + i)))).status).toBe(201);
    const after = verifyCheckpoint(await fetchCheckpoint(log.url), log.origin, key);
    expect(after.treeSize).toBe(before.treeSize + 13);
    const proof = await fetchConsistencyProof(log.url, before.treeSize, after.treeSize);
    expect(verifyConsistency(before.treeSize, after.treeSize, proof, before.rootHash, after.rootHash)).toBe(true);
    expect(verifyConsistency(before.treeSize, after.treeSize, proof, after.rootHash, after.rootHash)).toBe(false);
    const c = (await get(log.url, `/api/v1/consistency?first=3&second=${after.treeSize}`)).json;
    expect(verifyConsistency(3, after.treeSize, hx(c.hashes), hashFromHex(c.firstRootHash)!, after.rootHash)).toBe(true);
  });

  it('returns stored entries with a fresh proof and the same SET', async () => {
    const { entry, record } = appended[5];
    const e = await get(log.url, `/api/v1/entries/${record.logIndex}`);
    expect(e.status).toBe(200);
    expect(e.json.entry).toEqual(entry);
    expect(e.json.signedEntryTimestamp).toBe(record.signedEntryTimestamp);
    expect(verifyLogEntryRecord(e.json, canonicalEntry(entry), { operator: '', publicKey: key })).toMatchObject({ ok: true });
  });

  it('indexes revocations and serves them with proofs', async () => {
    const rev: LogEntry = { version: 1, timestamp: now(), entryType: 'revocation', body: { revokedDigest: D(3), reason: 'superseded', revokedBy: 'release-team' } };
    expect((await post(log.url, JSON.stringify(rev))).status).toBe(201);
    const all = (await get(log.url, '/api/v1/revocations')).json;
    expect(all.revocations).toHaveLength(1);
    expect(all.revocations[0].entry.body.revokedDigest).toBe(D(3));
    expect(verifyLogEntryRecord(all.revocations[0], canonicalEntry(rev), { operator: '', publicKey: key })).toMatchObject({ ok: true });
    expect((await get(log.url, `/api/v1/revocations?digest=${D(4)}`)).json.revocations).toHaveLength(0);
    const verified = await fetchRevocations(log.url, log.publicKey, { digest: D(3) });
    expect(verified.revocations.map((r) => r.entry)).toEqual([rev]);
    await expect(fetchRevocations(log.url, generateKeyPairSync('ed25519').publicKey)).rejects.toMatchObject({ code: 'LOG_PROOF_INVALID' });
  });

  const malformed: [string, string, string][] = [
    ['not JSON', '{"version":', 'JSON_INVALID'],
    ['a JSON array', '[]', 'LOG_ENTRY_INVALID'],
    ['a bad digest', JSON.stringify({ ...entryN(1), body: { ...entryN(1).body, subjectDigest: 'sha256:xyz' } }), 'LOG_ENTRY_INVALID'],
    ['an unknown field', JSON.stringify({ ...entryN(1), extra: true }), 'LOG_ENTRY_INVALID'],
    ['a timestamp far from the log clock', JSON.stringify({ ...entryN(1), timestamp: '2001-01-01T00:00:00Z' }), 'LOG_ENTRY_INVALID'],
  ];
  it.each(malformed)('rejects %s with 400 and a stable code, appending nothing', async (_n, body, code) => {
    const size = (await get(log.url, '/api/v1/sth')).json.treeSize;
    const a = await post(log.url, body);
    expect(a.status).toBe(400);
    expect(a.json.error.code).toBe(code);
    expect(typeof a.json.error.message).toBe('string');
    expect((await get(log.url, '/api/v1/sth')).json.treeSize).toBe(size);
  });

  it('rejects an oversized body with 413', async () => {
    const a = await post(log.url, JSON.stringify({ ...entryN(1), pad: 'x'.repeat(8000) }));
    expect(a.status).toBe(413);
    expect(a.json.error.code).toBe('LOG_ENTRY_INVALID');
  });

  it('rejects an oversized streamed body (no content-length) with 413', async () => {
    const chunk = new TextEncoder().encode(`{"pad":"${'x'.repeat(3000)}`);
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(chunk);
        c.enqueue(chunk);
        c.close();
      },
    });
    const res = await fetch(`${log.url}/api/v1/entries`, { method: 'POST', body, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('LOG_ENTRY_INVALID');
  });

  it('rejects bad queries with 400/404 and codes', async () => {
    const size = (await get(log.url, '/api/v1/sth')).json.treeSize;
    expect((await get(log.url, `/api/v1/proof?logIndex=${size}`)).status).toBe(400);
    expect((await get(log.url, '/api/v1/proof?logIndex=-1')).json.error.code).toBe('USAGE');
    expect((await get(log.url, '/api/v1/proof?logIndex=1e3')).status).toBe(400);
    expect((await get(log.url, '/api/v1/proof')).status).toBe(400);
    expect((await get(log.url, `/api/v1/consistency?first=${size + 1}`)).status).toBe(400);
    expect((await get(log.url, `/api/v1/entries/${size}`)).status).toBe(404);
    expect((await get(log.url, '/api/v1/nothing')).status).toBe(404);
    expect((await get(log.url, '/api/v1/revocations?digest=abc')).json.error.code).toBe('USAGE');
  });

  it('keeps its key, identity and tree across a restart', async () => {
    const before = (await get(log.url, '/api/v1/sth')).json;
    const { publicKey, logId } = log;
    await log.close();
    log = await startLogServer({ db: join(dir, 'log.db') });
    expect(log.publicKey).toBe(publicKey);
    expect(log.logId).toBe(logId);
    const after = (await get(log.url, '/api/v1/sth')).json;
    expect(after.rootHash).toBe(before.rootHash);
    expect((await post(log.url, JSON.stringify(entryN(777)))).json.logIndex).toBe(before.treeSize);
  });

  it('refuses an origin that cannot name a checkpoint key', async () => {
    await expect(startLogServer({ db: join(dir, 'other.db'), origin: 'my log' })).rejects.toMatchObject({ code: 'USAGE' });
  });

  it('refuses to sign an existing log with a different key', async () => {
    await expect(startLogServer({ db: join(dir, 'log.db'), privateKey: generateKeyPairSync('ed25519').privateKey })).rejects.toMatchObject({ code: 'KEY_INVALID' });
  });
});
