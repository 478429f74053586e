// `ct log serve` as a user runs it: the built binary, one JSON line on start, SIGTERM to stop.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { publicKeyFrom, spkiBase64 } from '../../src/trust/keyid.js';
import { canonicalEntry, fetchCheckpoint, submitToLogs, verifyCheckpoint, verifyLogEntryRecord } from '../../src/tlog/index.js';
import { repoRoot, runCt } from '../support/cli.js';
import { entryN } from './fixtures.js';

interface Started {
  child: ChildProcess;
  info: { url: string; logId: string; publicKey: string; operator: string; origin: string };
}

function serve(args: string[]): Promise<Started> {
  const child = spawn(process.execPath, [join(repoRoot, 'bin', 'ct.js'), 'log', 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    child.stdout!.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve({ child, info: JSON.parse(out.slice(0, nl)) });
    });
    child.once('exit', (code) => reject(new Error(`ct log serve exited ${code}: ${err}`)));
  });
}

function stop(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    child.removeAllListeners('exit');
    child.once('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}

describe('ct log serve', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ct-tlog-cli-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('prints its identity, serves appends and checkpoints, keeps its key across restarts, exits 0 on SIGTERM', async () => {
    const db = join(dir, 'log.db');
    const first = await serve(['--db', db, '--port', '0', '--log-id', 'cli-log', '--operator', 'CLI Operator']);
    expect(first.info).toMatchObject({ logId: 'cli-log', operator: 'CLI Operator', origin: 'cli-log' });
    expect(first.info.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const entry = entryN(1);
    const [r] = await submitToLogs(entry, [{ id: 'cli-log', url: first.info.url, publicKey: first.info.publicKey }], { timeoutMs: 5000 });
    expect(r.ok).toBe(true);
    if (r.ok) expect(verifyLogEntryRecord(r.record, canonicalEntry(entry), { operator: 'CLI Operator', publicKey: first.info.publicKey })).toMatchObject({ ok: true });
    const cp = verifyCheckpoint(await fetchCheckpoint(first.info.url), 'cli-log', publicKeyFrom(first.info.publicKey));
    expect(cp.treeSize).toBe(1);
    expect(await stop(first.child)).toBe(0);

    const again = await serve(['--db', db]);
    expect(again.info.publicKey).toBe(first.info.publicKey);
    expect(again.info.logId).toBe('cli-log');
    expect(verifyCheckpoint(await fetchCheckpoint(again.info.url), 'cli-log', publicKeyFrom(first.info.publicKey)).rootHash).toEqual(cp.rootHash);
    expect(await stop(again.child)).toBe(0);
  });

  it('uses the key file given with --key', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const keyFile = join(dir, 'log-key.pem');
    await writeFile(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
    const s = await serve(['--db', join(dir, 'keyed.db'), '--key', keyFile, '--origin', 'example.org/log']);
    expect(s.info.publicKey).toBe(spkiBase64(publicKey));
    expect(verifyCheckpoint(await fetchCheckpoint(s.info.url), 'example.org/log', publicKey).origin).toBe('example.org/log');
    expect(await stop(s.child)).toBe(0);
  });

  it('fails with the mapped exit code for a bad key file and a bad port', async () => {
    const bad = join(dir, 'not-a-key.pem');
    await writeFile(bad, 'hello');
    const r1 = await runCt(['log', 'serve', '--db', join(dir, 'x.db'), '--key', bad]);
    expect(r1.code).toBe(3); // KEY_INVALID → KEY_NOT_TRUSTED
    expect(r1.stderr).toContain('KEY_INVALID');
    const r2 = await runCt(['log', 'serve', '--db', join(dir, 'y.db'), '--port', 'eighty']);
    expect(r2.code).toBe(1); // USAGE
    expect(r2.stderr).toContain('USAGE');
  });
});
