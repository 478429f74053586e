/**
 * ct quickstart's trust store follows its logs' ports: compared on every run (a run stopped
 * between a log's move and the store's update left the old URL for good), never edited when the
 * user signed it (an edit drops the signatures) nor to bring back a log the user removed.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { layoutOf, writeTrustStore } from '../../src/quickstart/setup.js';
import { followLogsInTrustStore } from '../../src/quickstart/tlogs.js';
import { spkiBase64 } from '../../src/trust/keyid.js';
import type { LogServer } from '../../src/tlog/server.js';

const base = mkdtempSync(join(tmpdir(), 'ct-qs-tlogs-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

const log = (logId: string, port: number) => ({
  logId, operator: `op ${logId}`, url: `http://127.0.0.1:${port}`, origin: logId,
  publicKey: spkiBase64(generateKeyPairSync('ed25519').publicKey),
}) as unknown as LogServer;

async function made(name: string, logs: LogServer[]) {
  const l = layoutOf(join(base, name));
  mkdirSync(l.dir, { recursive: true });
  await writeTrustStore(l, generateKeyPairSync('ed25519').privateKey, logs);
  const read = () => JSON.parse(readFileSync(l.trustStore, 'utf8')) as { version: number; logs: Record<string, { url: string; publicKey: string }>; signatures?: unknown[] };
  return { l, read };
}

describe('the quickstart trust store and its logs', () => {
  it('a log on another port than the store says is moved there, key and the other log unchanged; no change, no line', async () => {
    const one = log('log-one', 1001);
    const two = log('log-two', 1002);
    const { l, read } = await made('moved', [one, two]);
    expect(await followLogsInTrustStore(l, [one, two])).toEqual([]);
    const movedOne = { ...one, url: 'http://127.0.0.1:2001' } as LogServer;
    const lines = await followLogsInTrustStore(l, [movedOne, two]);
    expect(lines).toEqual([`the trust store ${l.trustStore} listed log-one at http://127.0.0.1:1001, it listens on http://127.0.0.1:2001: updated`]);
    const store = read();
    expect([store.logs['log-one'].url, store.logs['log-two'].url]).toEqual(['http://127.0.0.1:2001', 'http://127.0.0.1:1002']);
    expect(store.logs['log-one'].publicKey).toBe(one.publicKey);
    // The next run finds it right (a run stopped after the move but before this left it wrong: found then too).
    expect(await followLogsInTrustStore(l, [movedOne, two])).toEqual([]);
  });

  it('a signed store is left as it is, saying what to do; a log the user removed is not added back', async () => {
    const one = log('log-one', 1001);
    const two = log('log-two', 1002);
    const { l, read } = await made('signed', [one, two]);
    const signed = { ...read(), signatures: [{ keyid: `sha256:${'ab'.repeat(32)}`, sig: 'c2ln' }] };
    writeFileSync(l.trustStore, JSON.stringify(signed, null, 2));
    const lines = await followLogsInTrustStore(l, [{ ...one, url: 'http://127.0.0.1:2001' } as LogServer, two]);
    expect(lines).toEqual([expect.stringMatching(/lists log-one at http:\/\/127\.0\.0\.1:1001, it listens on http:\/\/127\.0\.0\.1:2001: it is signed, so it is left as it is; update it \(ct trust-store add-log\) and sign it again$/)]);
    expect(read()).toEqual(signed);

    const { l: l2, read: read2 } = await made('removed', [two]);
    const before = read2();
    expect(await followLogsInTrustStore(l2, [{ ...one, url: 'http://127.0.0.1:2001' } as LogServer, two])).toEqual([]);
    expect(read2()).toEqual(before);
  });
});
