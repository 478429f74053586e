import { describe, expect, it } from '@jest/globals';
import { createHash, createPublicKey } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateKeyPair, loadPrivateKey, loadPublicKey, parsePublicKey, signBytes, verifyBytes, writeKeyPair } from '../../src/trust/keys.js';
import { keyIdOf } from '../../src/trust/keyid.js';
import { withTempDir } from './fixtures.js';
import { codeOfAsync as codeOf } from '../support/error-code.js';

/** Key id recomputed without KeyObject.export: the fixed Ed25519 SPKI header (RFC 8410) + raw key. */
function independentKeyId(jwkX: string): string {
  const der = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from(jwkX, 'base64url')]);
  return `sha256:${createHash('sha256').update(der).digest('hex')}`;
}


describe('key generation and files', () => {
  it('writes the private key with mode 0600 and the public key as SPKI PEM', async () => {
    await withTempDir(async (dir) => {
      const pair = generateKeyPair();
      const w = await writeKeyPair(join(dir, 'k'), pair, 'secret');
      expect((await stat(w.privatePath)).mode & 0o777).toBe(0o600);
      const pub = await readFile(w.publicPath, 'utf8');
      expect(pub).toContain('-----BEGIN PUBLIC KEY-----');
      expect(keyIdOf(createPublicKey(pub))).toBe(pair.keyId);
    });
  });

  it('gives the key id of the SPKI DER, matching an independent recomputation', () => {
    const pair = generateKeyPair();
    const x = pair.publicKey.export({ format: 'jwk' }).x as string;
    expect(pair.keyId).toBe(independentKeyId(x));
    expect(pair.keyId).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('cannot load an encrypted key without its password, or with a wrong one', async () => {
    await withTempDir(async (dir) => {
      const pair = generateKeyPair();
      const w = await writeKeyPair(join(dir, 'k'), pair, 'correct horse');
      const pem = await readFile(w.privatePath, 'utf8');
      expect(pem).toContain('-----BEGIN ENCRYPTED PRIVATE KEY-----');
      expect(await codeOf(loadPrivateKey(w.privatePath))).toBe('KEY_PASSWORD_REQUIRED');
      expect(['KEY_PASSWORD_REQUIRED', 'KEY_INVALID']).toContain(await codeOf(loadPrivateKey(w.privatePath, 'wrong')));
      const key = await loadPrivateKey(w.privatePath, 'correct horse');
      expect(keyIdOf(key)).toBe(pair.keyId);
    });
  });

  it('loads an unencrypted key without a password', async () => {
    await withTempDir(async (dir) => {
      const pair = generateKeyPair();
      const w = await writeKeyPair(join(dir, 'k'), pair);
      expect(w.encrypted).toBe(false);
      expect(keyIdOf(await loadPrivateKey(w.privatePath))).toBe(pair.keyId);
    });
  });

  it('refuses to overwrite an existing key pair', async () => {
    await withTempDir(async (dir) => {
      await writeKeyPair(join(dir, 'k'), generateKeyPair());
      expect(await codeOf(writeKeyPair(join(dir, 'k'), generateKeyPair()))).toBe('IO_ERROR');
    });
  });

  it('rejects garbage, public keys and unsupported key types as KEY_INVALID', async () => {
    await withTempDir(async (dir) => {
      const garbage = join(dir, 'garbage.key');
      await writeFile(garbage, '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n');
      expect(await codeOf(loadPrivateKey(garbage))).toBe('KEY_INVALID');
      const pubOnly = join(dir, 'pub.key');
      await writeFile(pubOnly, generateKeyPair().publicKey.export({ type: 'spki', format: 'pem' }));
      expect(await codeOf(loadPrivateKey(pubOnly))).toBe('KEY_INVALID');
      const { generateKeyPairSync } = await import('node:crypto');
      const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
      const rsaFile = join(dir, 'rsa.key');
      await writeFile(rsaFile, rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }));
      expect(await codeOf(loadPrivateKey(rsaFile))).toBe('KEY_INVALID');
      expect(await codeOf(loadPrivateKey(join(dir, 'missing.key')))).toBe('IO_ERROR');
      const notPub = join(dir, 'x.pub');
      await writeFile(notPub, 'not a key');
      expect(await codeOf(loadPublicKey(notPub))).toBe('KEY_INVALID');
    });
  });
});

describe('signBytes / verifyBytes', () => {
  for (const alg of ['ed25519', 'ecdsa-p256'] as const) {
    it(`${alg}: verifies its own signature and rejects a changed message or signature`, () => {
      const pair = generateKeyPair(alg);
      const data = Buffer.from('hello trust');
      const sig = signBytes(pair.privateKey, data);
      expect(verifyBytes(pair.publicKey, data, sig)).toBe(true);
      expect(verifyBytes(pair.publicKey, Buffer.from('hello trusT'), sig)).toBe(false);
      const bad = Buffer.from(sig);
      bad[bad.length - 1] ^= 1;
      expect(verifyBytes(pair.publicKey, data, bad)).toBe(false);
      expect(verifyBytes(generateKeyPair(alg).publicKey, data, sig)).toBe(false);
      expect(verifyBytes(pair.publicKey, data, Buffer.from('junk'))).toBe(false);
    });
  }

  it('parses base64 SPKI DER as trust stores hold it', () => {
    const pair = generateKeyPair();
    const b64 = pair.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
    expect(keyIdOf(parsePublicKey(b64))).toBe(pair.keyId);
  });
});
