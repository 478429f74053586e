/**
 * The deployer key (server/promotion/deployer-key.ts) is Ed25519, as the trust stores that must
 * list it in the role `deployers` are: an ECDSA key from deployer.keyFile (which docs/promotion.md
 * once invited) started a server whose VSAs no trust store could ever list.
 */
import { describe, expect, it } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDeployerKey } from '../../server/promotion/deployer-key.js';
import { addKey } from '../../src/trust/edit.js';
import { parsePublicKey } from '../../src/trust/keys.js';
import type { TrustStore } from '../../src/trust/types.js';

const pem = (k: ReturnType<typeof generateKeyPairSync>['privateKey']) => k.export({ type: 'pkcs8', format: 'pem' }) as string;

describe('deployer key', () => {
  it('refuses a deployer.keyFile that is not Ed25519 (KEY_INVALID, with how to make one) and a default file that is not', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ct-deployer-key-'));
    // Named as the docs name them (P-256), not by OpenSSL's curve names (prime256v1).
    for (const [name, kind, key] of [
      ['p256', 'ECDSA P-256', generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey],
      ['p384', 'ECDSA P-384', generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey],
      ['rsa', 'RSA', generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey],
    ] as const) {
      const file = join(dir, `${name}.pem`);
      writeFileSync(file, pem(key));
      await expect(loadDeployerKey(dir, file)).rejects.toMatchObject({ code: 'KEY_INVALID', message: expect.stringMatching(new RegExp(`^deployer\\.keyFile .* holds a key of type ${kind}: deploy VSAs are signed with Ed25519 keys only .*openssl genpkey -algorithm ed25519`)) });
    }
    const other = mkdtempSync(join(tmpdir(), 'ct-deployer-key-default-'));
    writeFileSync(join(other, 'deployer-key.pem'), pem(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey));
    await expect(loadDeployerKey(other)).rejects.toMatchObject({ code: 'KEY_INVALID' });
    writeFileSync(join(other, 'deployer-key.pem'), 'not a key');
    await expect(loadDeployerKey(other)).rejects.toMatchObject({ code: 'KEY_INVALID', message: expect.stringContaining('deployer key ') });
  });

  // The file's access is at fault, not the key: the operator fixes permissions, not the key.
  it('a default key file it cannot read is IO_ERROR, not KEY_INVALID', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ct-deployer-key-io-'));
    mkdirSync(join(dir, 'deployer-key.pem'));
    await expect(loadDeployerKey(dir)).rejects.toMatchObject({ code: 'IO_ERROR', details: { errno: 'EISDIR' } });
    // EACCES as well, where permissions bind (not as root).
    if (process.getuid?.() !== 0) {
      const other = mkdtempSync(join(tmpdir(), 'ct-deployer-key-io-'));
      writeFileSync(join(other, 'deployer-key.pem'), pem(generateKeyPairSync('ed25519').privateKey), { mode: 0o000 });
      await expect(loadDeployerKey(other)).rejects.toMatchObject({ code: 'IO_ERROR', details: { errno: 'EACCES' } });
    }
  });

  // `deployer: { keyFile: "" }` (a templated config with the value left out) meant unset before the
  // Ed25519 check, and then stopped the start reading "" as a file.
  it('an empty deployer.keyFile is unset: the default key in the data directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ct-deployer-key-empty-'));
    const made = await loadDeployerKey(dir, '');
    expect(readFileSync(join(dir, 'deployer-key.pem'), 'utf8')).toContain('BEGIN PRIVATE KEY');
    expect((await loadDeployerKey(dir)).keyId).toBe(made.keyId);
    expect((await loadDeployerKey(dir, '')).keyId).toBe(made.keyId);
  });

  it('an Ed25519 key (given, or made on first start and kept) is one a trust store takes in the role deployers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ct-deployer-key-'));
    const made = await loadDeployerKey(dir);
    expect(readFileSync(join(dir, 'deployer-key.pem'), 'utf8')).toContain('BEGIN PRIVATE KEY');
    expect((await loadDeployerKey(dir)).keyId).toBe(made.keyId);
    const file = join(dir, 'given.pem');
    writeFileSync(file, pem(generateKeyPairSync('ed25519').privateKey));
    const given = await loadDeployerKey(dir, file);
    expect(given.algorithm).toBe('ed25519');
    const store = { keys: {}, logs: {} } as unknown as TrustStore;
    const after = addKey(store, 'deployers', parsePublicKey(given.publicKey, 'deployer'));
    expect(after.keys.deployers[0].id).toBe(given.keyId);
  });
});
