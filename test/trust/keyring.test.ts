import { describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { addToKeyring, ctHome, keyringPaths, listKeys, resolveKey, resolvePrivateKeyPath, resolvePublicKey } from '../../src/trust/keyring.js';
import { generateKeyPair, privateKeyPem, publicKeyPem } from '../../src/trust/keys.js';
import { keyIdOf } from '../../src/trust/keyid.js';
import { withTempDir } from './fixtures.js';

describe('keyring', () => {
  it('defaults CT_HOME to the XDG config directory', () => {
    expect(ctHome({ CT_HOME: '/x' })).toBe('/x');
    expect(ctHome({ XDG_CONFIG_HOME: '/cfg' })).toBe(join('/cfg', 'cerro-torre'));
  });

  it('stores private keys 0600 and resolves by id, hex, prefix and name', async () => {
    await withTempDir(async (dir) => {
      const pair = generateKeyPair();
      const e = await addToKeyring(dir, { publicPem: publicKeyPem(pair.publicKey), privatePem: privateKeyPem(pair.privateKey, 'pw'), name: 'k1' });
      expect(e).toMatchObject({ id: pair.keyId, name: 'k1', hasPrivate: true, encrypted: true, algorithm: 'ed25519' });
      expect((await stat(keyringPaths(dir, pair.keyId).key)).mode & 0o777).toBe(0o600);
      for (const ref of [pair.keyId, pair.keyId.slice(7), pair.keyId.slice(7, 15), 'k1']) {
        expect((await resolveKey(dir, ref)).id).toBe(pair.keyId);
      }
      await expect(resolveKey(dir, 'k2')).rejects.toMatchObject({ code: 'UNKNOWN_KEY' });
      await expect(resolveKey(dir, pair.keyId.slice(7, 12))).rejects.toMatchObject({ code: 'UNKNOWN_KEY' }); // too short a prefix
      expect(keyIdOf((await resolvePublicKey(dir, 'k1')).key)).toBe(pair.keyId);
    });
  });

  it('a --key value: a file (a pipe is not read here: the caller reads it once), a keyring key, never silently one of both', async () => {
    await withTempDir(async (dir) => {
      const keys = join(dir, 'keys');
      const pair = generateKeyPair();
      await addToKeyring(keys, { publicPem: publicKeyPem(pair.publicKey), privatePem: privateKeyPem(pair.privateKey), name: 'release' });
      const cwd = process.cwd();
      process.chdir(dir);
      try {
        expect(await resolvePrivateKeyPath(keys, 'release')).toBe(keyringPaths(keys, pair.keyId).key);
        // A directory of that name is not a key file: the keyring key is meant.
        await mkdir(join(dir, 'release'));
        expect(await resolvePrivateKeyPath(keys, 'release')).toBe(keyringPaths(keys, pair.keyId).key);
        await rm(join(dir, 'release'), { recursive: true });
        // A file of that name too: refused, saying how to name either.
        await writeFile(join(dir, 'release'), privateKeyPem(generateKeyPair().privateKey));
        await expect(resolvePrivateKeyPath(keys, 'release')).rejects.toMatchObject({ code: 'USAGE', message: expect.stringContaining('write ./release for the file') });
        expect(await resolvePrivateKeyPath(keys, './release')).toBe('./release');
        expect(await resolvePrivateKeyPath(keys, pair.keyId)).toBe(keyringPaths(keys, pair.keyId).key);
        await expect(resolvePrivateKeyPath(keys, 'nobody')).rejects.toMatchObject({ code: 'IO_ERROR' });
        // A key file by bare name does not depend on a keyring that cannot be read.
        await writeFile(join(dir, 'signer.key'), privateKeyPem(generateKeyPair().privateKey));
        expect(await resolvePrivateKeyPath(join(dir, 'signer.key', 'keys'), 'signer.key')).toBe('signer.key');
        await mkdir(join(dir, 'somedir'));
        await expect(resolvePrivateKeyPath(keys, 'somedir')).rejects.toMatchObject({ code: 'IO_ERROR', message: expect.stringContaining('somedir: is a directory, not a key file') });
        // A FIFO with no writer yet: a read here would wait for ever.
        execFileSync('mkfifo', [join(dir, 'fifo')]);
        expect(await resolvePrivateKeyPath(keys, join(dir, 'fifo'))).toBe(join(dir, 'fifo'));
      } finally {
        process.chdir(cwd);
      }
    });
  }, 10_000);

  it('rejects a duplicate key, a taken name and a bad name', async () => {
    await withTempDir(async (dir) => {
      const a = generateKeyPair();
      const b = generateKeyPair();
      await addToKeyring(dir, { publicPem: publicKeyPem(a.publicKey), name: 'a' });
      await expect(addToKeyring(dir, { publicPem: publicKeyPem(a.publicKey) })).rejects.toMatchObject({ code: 'USAGE' });
      await expect(addToKeyring(dir, { publicPem: publicKeyPem(b.publicKey), name: 'a' })).rejects.toMatchObject({ code: 'USAGE' });
      await expect(addToKeyring(dir, { publicPem: publicKeyPem(b.publicKey), name: '../evil' })).rejects.toMatchObject({ code: 'USAGE' });
      // the public-only key may gain its private half
      const upgraded = await addToKeyring(dir, { publicPem: publicKeyPem(a.publicKey), privatePem: privateKeyPem(a.privateKey) });
      expect(upgraded).toMatchObject({ name: 'a', hasPrivate: true, encrypted: false });
      expect((await listKeys(dir)).map((e) => e.id)).toEqual([a.keyId]);
    });
  });

  it('reports an ambiguous prefix as USAGE', async () => {
    await withTempDir(async (dir) => {
      const a = generateKeyPair();
      const entry = await addToKeyring(dir, { publicPem: publicKeyPem(a.publicKey) });
      // A second entry sharing the first 10 hex digits (crafted: finding a real one takes ~2^40 tries).
      const twinHex = a.keyId.slice(7, 17) + (a.keyId[17] === '0' ? '1' : '0') + a.keyId.slice(18);
      await writeFile(join(dir, `${twinHex}.json`), JSON.stringify({ ...entry, id: `sha256:${twinHex}` }));
      await expect(resolveKey(dir, a.keyId.slice(7, 17))).rejects.toMatchObject({ code: 'USAGE' });
      expect((await resolveKey(dir, a.keyId.slice(7, 20))).id).toBe(a.keyId);
    });
  });
});
