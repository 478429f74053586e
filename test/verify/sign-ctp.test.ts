import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { signCtp } from '../../src/attest/sign-ctp.js';
import { startLogServer, type LogServer } from '../../src/tlog/server.js';
import { openCtp } from '../../src/bundle/read.js';
import { parseVcsBundle } from '../../src/verify/vcs/parse.js';
import { verifyCtp } from '../../src/verify/ctp/verify-ctp.js';
import { isCtError } from '../../src/core/errors.js';
import { privateKeyPem } from '../../src/trust/keys.js';
import { runCt } from '../support/cli.js';
import { makeKey, makeStore, trustOf } from './fixtures.js';
import { tempDir, writeUnsignedCtp } from './ctp-fixtures.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let log: LogServer;
const signer = makeKey();
const DEAD = 'http://127.0.0.1:9'; // discard port: nothing listens

beforeAll(async () => {
  tmp = await tempDir('ct-sign-');
  log = await startLogServer({ db: join(tmp.dir, 'log.db'), logId: 'only-log', operator: 'Only Operator' });
  await writeUnsignedCtp(join(tmp.dir, 'u.ctp'));
});
afterAll(async () => {
  await log.close();
  await tmp.cleanup();
});

describe('signCtp', () => {
  it('records in the logs that answer and reports the one that did not', async () => {
    const out = join(tmp.dir, 'partial.ctp');
    const r = await signCtp(join(tmp.dir, 'u.ctp'), { key: signer.privateKey, logs: [{ id: 'only-log', url: log.url }, { id: 'dead', url: DEAD }], out, retries: 0, timeoutMs: 2000 });
    expect(r.logs.find((l) => l.id === 'only-log')?.ok).toBe(true);
    expect(r.logs.find((l) => l.id === 'dead')?.ok).toBe(false);
    const b = parseVcsBundle((await openCtp(out)).file('attestations/bundle.json'));
    expect(b.logEntries.map((e) => e.entry.logId)).toEqual(['only-log', 'only-log']);
    const store = makeStore({ signers: [{ key: signer }], logs: [] });
    store.logs = { 'only-log': { operator: log.operator, publicKey: log.publicKey, url: log.url, algorithm: 'ed25519' } };
    expect((await verifyCtp(out, { trust: trustOf(store) })).code).toBe('INSUFFICIENT_LOG_COVERAGE');
    expect((await verifyCtp(out, { trust: trustOf(store), requirements: { logQuorum: 1 } })).decision).toBe('ALLOW');
  });
  it('fails with NETWORK_ERROR when no log records an attestation, and writes nothing', async () => {
    const out = join(tmp.dir, 'none.ctp');
    let code: string | undefined;
    try {
      await signCtp(join(tmp.dir, 'u.ctp'), { key: signer.privateKey, logs: [{ id: 'dead', url: DEAD }], out, retries: 0, timeoutMs: 2000 });
    } catch (e) {
      if (isCtError(e)) code = e.code;
    }
    expect(code).toBe('NETWORK_ERROR');
    await expect(openCtp(out)).rejects.toMatchObject({ code: 'IO_ERROR' });
  });
  it('ct sign learns a bare log URL\'s id from the log itself', async () => {
    await writeFile(join(tmp.dir, 'k.key'), privateKeyPem(signer.privateKey));
    const r = await runCt(['sign', join(tmp.dir, 'u.ctp'), '--key', join(tmp.dir, 'k.key'), '--log', log.url, '--out', join(tmp.dir, 'cli.ctp'), '--json']);
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as { logs: { id: string; ok: boolean }[] }).logs).toEqual([{ id: 'only-log', url: log.url, ok: true }]);
    // One log, where ct verify asks for two by default: said at signing time.
    expect(r.stderr).toMatch(/warning: recorded by 1 distinct log .*INSUFFICIENT_LOG_COVERAGE.*--log-quorum 1/);
  }, 30_000);

  it('ct sign says a log it cannot reach is not reachable (not that its id is unknown)', async () => {
    const closed = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as AddressInfo;
        s.close(() => resolve(port));
      });
    });
    const r = await runCt(['sign', join(tmp.dir, 'u.ctp'), '--key', join(tmp.dir, 'k.key'), '--log', `http://127.0.0.1:${closed}`, '--out', join(tmp.dir, 'never.ctp')]);
    expect(r.code).toBe(12);
    expect(r.stderr).toContain(`error[NETWORK_ERROR]: --log http://127.0.0.1:${closed}: the log is not reachable (ECONNREFUSED); is it running, and is the URL right?`);
  }, 30_000);
});
