/**
 * The deployer key (server/promotion/deployer-key.ts) is Ed25519, as the trust stores that must
 * list it in the role `deployers` are: an ECDSA key from deployer.keyFile (which docs/promotion.md
 * once invited) started a server whose VSAs no trust store could ever list.
 */
import { describe, expect, it } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
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
    for (const [name, key] of [
      ['p256', generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey],
      ['p384', generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey],
      ['rsa', generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey],
    ] as const) {
      const file = join(dir, `${name}.pem`);
      writeFileSync(file, pem(key));
      await expect(loadDeployerKey(dir, file)).rejects.toMatchObject({ code: 'KEY_INVALID', message: expect.stringMatching(/^deployer\.keyFile .* holds a key of type .*: deploy VSAs are signed with Ed25519 keys only .*openssl genpkey -algorithm ed25519/) });
    }
    const other = mkdtempSync(join(tmpdir(), 'ct-deployer-key-default-'));
    writeFileSync(join(other, 'deployer-key.pem'), pem(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey));
    await expect(loadDeployerKey(other)).rejects.toMatchObject({ code: 'KEY_INVALID' });
    writeFileSync(join(other, 'deployer-key.pem'), 'not a key');
    await expect(loadDeployerKey(other)).rejects.toMatchObject({ code: 'KEY_INVALID', message: expect.stringContaining('deployer key ') });
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
