// Fork detection: two log servers with the same key and origin that show different histories
// are caught by a witness that remembers checkpoints (JSON-file and SQLite memories alike).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  JsonFileCheckpointMemory,
  SqliteCheckpointMemory,
  checkLogConsistency,
  fetchCheckpoint,
  fetchConsistencyProof,
  startLogServer,
  verifyCheckpoint,
  type CheckpointMemory,
  type LogEntry,
  type LogServer,
} from '../../src/tlog/index.js';
import { entryN } from './fixtures.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const ORIGIN = 'example.org/fork-test';

async function append(log: LogServer, entry: LogEntry): Promise<void> {
  const res = await fetch(`${log.url}/api/v1/entries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(entry) });
  expect(res.status).toBe(201);
}

async function observe(memory: CheckpointMemory, log: LogServer) {
  const cp = verifyCheckpoint(await fetchCheckpoint(log.url), ORIGIN, publicKey, ORIGIN);
  return checkLogConsistency(memory, 'fork-log', cp, (a, b) => fetchConsistencyProof(log.url, a, b));
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ct-tlog-witness-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const memories: [string, () => CheckpointMemory & { close?: () => void }][] = [
  ['JSON file', () => new JsonFileCheckpointMemory(join(dir, `mem-${Math.random()}.json`))],
  ['SQLite', () => new SqliteCheckpointMemory(join(dir, `mem-${Math.random()}.db`))],
];

describe.each(memories)('checkpoint witness with %s memory', (_name, makeMemory) => {
  let honest: LogServer;
  let evil: LogServer;
  let memory: CheckpointMemory & { close?: () => void };
  const shared = [entryN(1), entryN(2), entryN(3)];

  beforeAll(async () => {
    const sub = await mkdtemp(join(dir, 'logs-'));
    honest = await startLogServer({ db: join(sub, 'honest.db'), privateKey, logId: 'fork-log', origin: ORIGIN });
    evil = await startLogServer({ db: join(sub, 'evil.db'), privateKey, logId: 'fork-log', origin: ORIGIN });
    for (const e of shared) {
      await append(honest, e);
      await append(evil, e);
    }
    memory = makeMemory();
  });
  afterAll(async () => {
    await Promise.all([honest?.close(), evil?.close()]);
    memory?.close?.();
  });

  it('accepts the first checkpoint, then the same one, then a consistent extension', async () => {
    expect(await observe(memory, honest)).toEqual({ ok: true, status: 'first-seen' });
    expect(await observe(memory, evil)).toEqual({ ok: true, status: 'unchanged' }); // same history so far
    await append(honest, entryN(10));
    expect(await observe(memory, honest)).toEqual({ ok: true, status: 'extended' });
    expect((await memory.get('fork-log'))?.treeSize).toBe(4);
  });

  it('detects the same size with a different root (split view)', async () => {
    await append(evil, entryN(666)); // evil's 4th entry differs from honest's
    const r = await observe(memory, evil);
    expect(r).toMatchObject({ ok: false, code: 'LOG_INCONSISTENT' });
  });

  it('detects a larger tree that does not extend the remembered one', async () => {
    await append(evil, entryN(667));
    await append(evil, entryN(668));
    const r = await observe(memory, evil);
    expect(r).toMatchObject({ ok: false, code: 'LOG_INCONSISTENT' });
    // the fork never replaced what the witness remembers
    expect((await memory.get('fork-log'))?.treeSize).toBe(4);
    expect(await observe(memory, honest)).toEqual({ ok: true, status: 'unchanged' });
  });

  it('detects a tree smaller than one already seen (rollback)', async () => {
    const cp = verifyCheckpoint(await fetchCheckpoint(honest.url), ORIGIN, publicKey);
    const r = await checkLogConsistency(memory, 'fork-log', { ...cp, treeSize: 3, rootHash: Buffer.alloc(32) }, () => Promise.resolve([]));
    expect(r).toMatchObject({ ok: false, code: 'LOG_INCONSISTENT' });
  });

  it('detects a proof that lies (evil serves its own proof for the honest sizes)', async () => {
    const honestCp = verifyCheckpoint(await fetchCheckpoint(honest.url), ORIGIN, publicKey);
    await append(honest, entryN(11));
    const grown = verifyCheckpoint(await fetchCheckpoint(honest.url), ORIGIN, publicKey);
    expect(grown.treeSize).toBe(honestCp.treeSize + 1);
    const r = await checkLogConsistency(memory, 'fork-log', grown, (a, b) => fetchConsistencyProof(evil.url, a, Math.min(b, 6)));
    expect(r).toMatchObject({ ok: false, code: 'LOG_INCONSISTENT' });
    expect(await observe(memory, honest)).toEqual({ ok: true, status: 'extended' });
  });
});

describe('JSON checkpoint memory file', () => {
  it('persists across instances and refuses a corrupt file', async () => {
    const path = join(dir, 'persist.json');
    const cp = { origin: 'o', treeSize: 3, rootHash: 'ab'.repeat(32), seenAt: new Date().toISOString() };
    await new JsonFileCheckpointMemory(path).put('l', cp);
    expect(await new JsonFileCheckpointMemory(path).get('l')).toEqual(cp);
    expect(await new JsonFileCheckpointMemory(path).get('other')).toBeUndefined();
    await writeFile(path, '{"version":1,"logs":{"l":{"treeSize":"x"}}}');
    await expect(new JsonFileCheckpointMemory(path).get('l')).rejects.toMatchObject({ code: 'JSON_INVALID' });
  });
});
