import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CtError } from '../../src/core/errors.js';
import { writeFileAtomic } from '../../src/core/fs.js';
import { keyIdOf, spkiBase64 } from '../../src/trust/keyid.js';

export interface DeployerKey {
  privateKey: KeyObject;
  keyId: string;
  /** SPKI DER, base64: what `ct trust add-key --role deployers` takes. */
  publicKey: string;
  algorithm: string;
}

/**
 * The key deploy VSAs are signed with: the configured file, else `deployer-key.pem` in the data
 * directory (Ed25519, 0600, made on first start). Kept apart from the channel key: one key, one
 * purpose.
 */
export async function loadDeployerKey(dataDir: string, keyFile?: string): Promise<DeployerKey> {
  let privateKey: KeyObject;
  if (keyFile) {
    try {
      privateKey = createPrivateKey(readFileSync(keyFile));
    } catch (e) {
      throw new CtError('KEY_INVALID', `deployer.keyFile ${keyFile}: ${(e as Error).message}`, { path: keyFile }, { cause: e });
    }
  } else {
    const path = join(dataDir, 'deployer-key.pem');
    if (existsSync(path)) privateKey = createPrivateKey(readFileSync(path));
    else {
      privateKey = generateKeyPairSync('ed25519').privateKey;
      await writeFileAtomic(path, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600);
    }
  }
  const pub = createPublicKey(privateKey);
  const algorithm = pub.asymmetricKeyType === 'ec' ? `ecdsa-${pub.asymmetricKeyDetails?.namedCurve ?? ''}` : String(pub.asymmetricKeyType);
  return { privateKey, keyId: keyIdOf(pub), publicKey: spkiBase64(pub), algorithm };
}
