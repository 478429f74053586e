import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../src/core/fs.js';

/** The server's Ed25519 channel key, made on first start and kept in the data directory (0600). */
export async function loadServerKey(dataDir: string): Promise<{ privateKey: KeyObject; publicKey: KeyObject; publicKeyB64: string }> {
  const path = join(dataDir, 'server-key.pem');
  let privateKey: KeyObject;
  if (existsSync(path)) privateKey = createPrivateKey(readFileSync(path));
  else {
    privateKey = generateKeyPairSync('ed25519').privateKey;
    await writeFileAtomic(path, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600);
  }
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, publicKeyB64: publicKey.export({ type: 'spki', format: 'der' }).toString('base64') };
}
