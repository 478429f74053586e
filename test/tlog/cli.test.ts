// `ct log serve` as a user runs it: the built binary, one JSON line on start, SIGTERM to stop.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { publicKeyFrom, spkiBase64 } from '../../src/trust/keyid.js';
import { canonicalEntry, fetchCheckpoint, startLogServer, submitToLogs, verifyCheckpoint, verifyLogEntryRecord } from '../../src/tlog/index.js';
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

describe('ct log submit / ct log check', () => {
  it('submits an entry file, then catches a log that forks its history (exit 2, LOG_INCONSISTENT)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ct-tlog-cli-check-'));
    const { privateKey } = generateKeyPairSync('ed25519');
    const honest = await startLogServer({ db: join(dir, 'h.db'), privateKey, origin: 'fork.example' });
    const evil = await startLogServer({ db: join(dir, 'e.db'), privateKey, origin: 'fork.example' });
    try {
      const { timestamp: _t, ...bare } = entryN(1);
      const entryFile = join(dir, 'entry.json');
      await writeFile(entryFile, JSON.stringify(bare));
      const sub = await runCt(['log', 'submit', '--url', honest.url, '--entry', entryFile, '--log-id', 'fork', '--public-key', honest.publicKey]);
      expect(sub.code).toBe(0);
      const out = JSON.parse(sub.stdout);
      expect(out.record.logId).toBe('fork');
      expect(verifyLogEntryRecord(out.record, canonicalEntry(out.entry), { operator: '', publicKey: honest.publicKey })).toMatchObject({ ok: true });
      const bad = await runCt(['log', 'submit', '--url', honest.url, '--entry', entryFile, '--public-key', 'not-a-key']);
      expect(bad.code).toBe(3); // KEY_INVALID, refused before anything is sent

      const memory = join(dir, 'memory.json');
      const check = (url: string) => runCt(['log', 'check', '--url', url, '--public-key', honest.publicKey, '--origin', 'fork.example', '--memory', memory]);
      const first = await check(honest.url);
      expect(first.code).toBe(0);
      expect(JSON.parse(first.stdout)).toMatchObject({ treeSize: 1, status: 'first-seen' });
      await submitToLogs(entryN(2), [{ id: 'x', url: evil.url }]); // evil's first entry differs
      const forked = await check(evil.url);
      expect(forked.code).toBe(2);
      expect(forked.stderr).toContain('LOG_INCONSISTENT');
      await submitToLogs(entryN(3), [{ id: 'x', url: honest.url }]);
      const grown = await check(honest.url);
      expect(grown.code).toBe(0);
      expect(JSON.parse(grown.stdout)).toMatchObject({ treeSize: 2, status: 'extended' });
    } finally {
      await Promise.all([honest.close(), evil.close()]);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
