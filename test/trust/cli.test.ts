import { describe, expect, it, beforeAll, afterAll } from '@jest/globals';
import { copyFile, mkdtemp, readFile, rm, stat, writeFile, readdir } from 'node:fs/promises';
import { createPublicKey } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCt, type CtResult } from '../support/cli.js';
import { keyIdOf } from '../../src/trust/keyid.js';
import { loadPrivateKey } from '../../src/trust/keys.js';
import { loadTrustStore } from '../../src/trust/store.js';

let dir: string;
let env: NodeJS.ProcessEnv;
const PASSWORD = 'cli test password';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ct-trust-cli-'));
  env = { CT_HOME: join(dir, 'home'), CT_KEY_PASSWORD: PASSWORD };
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function ct(args: string[], extra: NodeJS.ProcessEnv = {}): Promise<CtResult> {
  return runCt(args, { cwd: dir, env: { ...env, ...extra } });
}

async function ok(args: string[], extra: NodeJS.ProcessEnv = {}): Promise<string> {
  const r = await ct(args, extra);
  if (r.code !== 0) throw new Error(`ct ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

describe('ct keygen', () => {
  it('without a password and without a terminal fails with KEY_PASSWORD_REQUIRED and writes nothing', async () => {
    const r = await ct(['keygen', '--out', join(dir, 'nopw')], { CT_KEY_PASSWORD: '' });
    expect(r.code).toBe(11);
    expect(r.stderr).toContain('KEY_PASSWORD_REQUIRED');
    expect((await readdir(dir)).filter((n) => n.startsWith('nopw'))).toEqual([]);
  });

  it('writes an encrypted 0600 private key and prints the id of the public key', async () => {
    const id = await ok(['keygen', '--out', join(dir, 'enc')]);
    const pubPem = await readFile(join(dir, 'enc.pub'), 'utf8');
    expect(id).toBe(keyIdOf(createPublicKey(pubPem)));
    expect((await stat(join(dir, 'enc.key'))).mode & 0o777).toBe(0o600);
    await expect(loadPrivateKey(join(dir, 'enc.key'))).rejects.toMatchObject({ code: 'KEY_PASSWORD_REQUIRED' });
    expect(keyIdOf(await loadPrivateKey(join(dir, 'enc.key'), PASSWORD))).toBe(id);
    const again = await ct(['keygen', '--out', join(dir, 'enc')]);
    expect(again.code).toBe(11); // IO_ERROR: refuses to replace an existing key
  });

  it('with --no-password writes an unencrypted key', async () => {
    const id = await ok(['keygen', '--no-password', '--out', join(dir, 'plain')], { CT_KEY_PASSWORD: '' });
    expect(keyIdOf(await loadPrivateKey(join(dir, 'plain.key')))).toBe(id);
    expect((await stat(join(dir, 'plain.key'))).mode & 0o777).toBe(0o600);
  });
});

describe('ct key', () => {
  it('keeps generated and imported keys in $CT_HOME/keys and exports them', async () => {
    const id = await ok(['keygen', '--name', 'alice']);
    const list = JSON.parse(await ok(['key', 'list', '--json'])) as { id: string; name?: string; hasPrivate: boolean; encrypted: boolean }[];
    expect(list).toContainEqual(expect.objectContaining({ id, name: 'alice', hasPrivate: true, encrypted: true }));
    expect((await stat(join(dir, 'home', 'keys'))).mode & 0o777).toBe(0o700);

    const pub = await ok(['key', 'export', 'alice']);
    expect(keyIdOf(createPublicKey(pub))).toBe(id);
    expect(await ok(['key', 'export', id.slice(7, 19), '--private'])).toContain('BEGIN ENCRYPTED PRIVATE KEY');

    const imported = await ok(['key', 'import', join(dir, 'plain.pub'), '--name', 'bob']);
    expect(imported).toBe(keyIdOf(createPublicKey(await readFile(join(dir, 'plain.pub'), 'utf8'))));
    expect((await ct(['key', 'export', 'bob', '--private'])).code).toBe(3); // public only
    expect((await ct(['key', 'import', join(dir, 'plain.pub')])).code).toBe(1); // already there (USAGE)
    expect((await ct(['key', 'export', 'nobody'])).stderr).toContain('UNKNOWN_KEY');

    const encImported = await ok(['key', 'import', join(dir, 'enc.key'), '--name', 'carol']);
    expect(encImported).toBe(keyIdOf(createPublicKey(await readFile(join(dir, 'enc.pub'), 'utf8'))));
    const noPw = await ct(['key', 'import', join(dir, 'enc.key')], { CT_KEY_PASSWORD: '' });
    expect(noPw.stderr).toContain('KEY_PASSWORD_REQUIRED');
  });
});

describe('ct trust-store', () => {
  it('builds, signs and applies an update only with the threshold of current updaters', async () => {
    const ts = join(dir, 'ts.json');
    await ok(['trust-store', 'init', '--id', 'cli-store', '-o', ts]);
    const u1 = await ok(['keygen', '--name', 'u1']);
    const u2 = await ok(['keygen', '--name', 'u2', '--no-password']);
    const u3 = await ok(['keygen', '--name', 'u3']);
    for (const u of ['u1', 'u2', 'u3']) await ok(['key', 'trust', u, '--trust-store', ts, '--role', 'trust-store-updaters']);
    const builder = await ok(['trust-store', 'add-key', ts, '--role', 'builders', '--key', join(dir, 'plain.pub'), '--valid-until', '2099-01-01T00:00:00Z']);
    await ok(['trust-store', 'add-log', ts, '--id', 'log-1', '--operator', 'Op', '--public-key-file', join(dir, 'enc.pub'), '--url', 'https://log.example']);
    await ok(['trust-store', 'set-threshold', ts, '--group', 'trust-store-updaters', '--k', '2']);

    const shown = JSON.parse(await ok(['trust-store', 'show', ts, '--json'])) as { version: number; keys: { id: string; roles: string[]; status: string }[]; thresholds: Record<string, { k: number; n: number }>; logs: { id: string }[] };
    expect(shown.version).toBe(1);
    expect(shown.keys.map((k) => k.id).sort()).toEqual([u1, u2, u3, builder].sort());
    expect(shown.keys.every((k) => k.status === 'valid')).toBe(true);
    expect(shown.thresholds['trust-store-updaters']).toMatchObject({ k: 2, n: 3 });
    expect(shown.logs.map((l) => l.id)).toEqual(['log-1']);

    const next = join(dir, 'next.json');
    await copyFile(ts, next);
    expect(await ok(['trust-store', 'bump', next])).toBe('2');
    await ok(['trust-store', 'revoke', next, '--key', builder]);
    const before = await readFile(ts, 'utf8');

    const unsigned = await ct(['trust-store', 'update', ts, next]);
    expect(unsigned.stderr).toContain('TRUST_STORE_UNSIGNED');
    expect(unsigned.code).toBe(2);

    expect(await ok(['trust-store', 'sign', next, '--key', 'u1'])).toBe(u1);
    const one = await ct(['trust-store', 'update', ts, next]);
    expect(one.code).toBe(4);
    expect(one.stderr).toContain('THRESHOLD_NOT_MET');
    expect(await readFile(ts, 'utf8')).toBe(before);

    // a non-updater's signature does not help
    await ok(['trust-store', 'sign', next, '--key', join(dir, 'plain.key')]);
    expect((await ct(['trust-store', 'update', ts, next])).code).toBe(4);

    expect(await ok(['trust-store', 'sign', next, '--key', 'u2'])).toBe(u2);
    const applied = JSON.parse(await ok(['trust-store', 'update', ts, next, '--json'])) as { toVersion: number; signers: string[] };
    expect(applied.toVersion).toBe(2);
    expect(applied.signers.sort()).toEqual([u1, u2].sort());
    expect(await readFile(ts, 'utf8')).toBe(await readFile(next, 'utf8'));
    expect((await loadTrustStore(ts)).revoked?.keys).toEqual([builder]);

    const replay = await ct(['trust-store', 'update', ts, next]);
    expect(replay.code).toBe(3);
    expect(replay.stderr).toContain('TRUST_STORE_ROLLBACK');
  }, 180_000); // about twenty ct processes: minutes on a loaded 2-core machine

  it('does not sign with an encrypted key when no password is available', async () => {
    const ts = join(dir, 'ts2.json');
    await ok(['trust-store', 'init', '--id', 'x', '-o', ts]);
    const before = await readFile(ts, 'utf8');
    const r = await ct(['trust-store', 'sign', ts, '--key', join(dir, 'enc.key')], { CT_KEY_PASSWORD: '' });
    expect(r.code).toBe(11);
    expect(r.stderr).toContain('KEY_PASSWORD_REQUIRED');
    expect(await readFile(ts, 'utf8')).toBe(before);
    expect((await ct(['trust-store', 'init', '--id', 'x', '-o', ts])).code).toBe(11); // exists
  });

  it('reports an invalid store with TRUST_STORE_INVALID and leaves it untouched', async () => {
    const bad = join(dir, 'bad.json');
    const text = JSON.stringify({ version: 1, id: 'b', updated: '2026-01-01T00:00:00Z', keys: { builders: [{ id: 'sha256:' + 'a'.repeat(64), algorithm: 'ed25519', publicKey: 'MCowBQYDK2VwAyEAzYIMKKYAS93UMls3C8ZfkmXfW4h+btXMRi2ShtK4/BU=', validFrom: '2024-01-01T00:00:00Z' }] }, thresholds: {}, logs: {} });
    await writeFile(bad, text);
    const show = await ct(['trust-store', 'show', bad]);
    expect(show.code).toBe(10);
    expect(show.stderr).toContain('TRUST_STORE_INVALID');
    expect(show.stderr).toContain('/keys/builders/0/id');
    expect((await ct(['trust-store', 'add-key', bad, '--role', 'builders', '--key', join(dir, 'enc.pub')])).code).toBe(10);
    expect(await readFile(bad, 'utf8')).toBe(text);
    const log = await ct(['trust-store', 'add-log', bad, '--id', 'l', '--operator', 'o', '--url', 'https://x', '--public-key', 'AAAA', '--public-key-file', 'f']);
    expect(log.code).toBe(1); // USAGE: both key options
  });
});

describe('ct trust-store add-log: one log is listed once (#13 finding 3)', () => {
  it('refuses a second id for the same key or the same URL (LOG_DUPLICATE), and keeps the store unchanged', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const pem = (): string => generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const ts = join(dir, 'dup-logs.json');
    await ok(['trust-store', 'init', '--id', 'dup', '-o', ts]);
    await writeFile(join(dir, 'log-a.pub'), pem());
    await writeFile(join(dir, 'log-b.pub'), pem());
    await ok(['trust-store', 'add-log', ts, '--id', 'a', '--operator', 'Op A', '--public-key-file', join(dir, 'log-a.pub'), '--url', 'https://log-a.example']);
    const before = await readFile(ts, 'utf8');
    const sameKey = await ct(['trust-store', 'add-log', ts, '--id', 'b', '--operator', 'Op B', '--public-key-file', join(dir, 'log-a.pub'), '--url', 'https://log-b.example']);
    expect(sameKey.code).toBe(10);
    expect(sameKey.stderr).toContain('LOG_DUPLICATE');
    const sameUrl = await ct(['trust-store', 'add-log', ts, '--id', 'b', '--operator', 'Op B', '--public-key-file', join(dir, 'log-b.pub'), '--url', 'https://LOG-A.example/']);
    expect(sameUrl.code).toBe(10);
    expect(sameUrl.stderr).toContain('LOG_DUPLICATE');
    expect(await readFile(ts, 'utf8')).toBe(before);
    await ok(['trust-store', 'add-log', ts, '--id', 'b', '--operator', 'Op B', '--public-key-file', join(dir, 'log-b.pub'), '--url', 'https://log-b.example']);
    expect(Object.keys((await loadTrustStore(ts)).logs ?? {})).toEqual(['a', 'b']);
  });
});
