import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CtError } from '../../src/core/errors.js';
import { writeFileAtomic } from '../../src/core/fs.js';
import { keyIdOf, spkiBase64 } from '../../src/trust/keyid.js';

export interface DeployerKey {
  privateKey: KeyObject;
  keyId: string;
  /** SPKI DER, base64: what `ct trust-store add-key --role deployers --key` takes. */
  publicKey: string;
  algorithm: string;
}

/**
 * The key deploy VSAs are signed with: the configured file, else `deployer-key.pem` in the data
 * directory (Ed25519, 0600, made on first start). Kept apart from the channel key: one key, one
 * purpose. Ed25519 only: a trust store lists Ed25519 keys alone (SPEC §5), so the VSAs of another
 * key (an ECDSA key from a KMS) could never be listed in the role `deployers` and would count
 * nowhere, noticed only when a promotion that needs them is refused.
 */
export async function loadDeployerKey(dataDir: string, keyFile?: string): Promise<DeployerKey> {
  const path = keyFile ?? join(dataDir, 'deployer-key.pem');
  let privateKey: KeyObject;
  if (keyFile || existsSync(path)) {
    try {
      privateKey = createPrivateKey(readFileSync(path));
    } catch (e) {
      throw new CtError('KEY_INVALID', `${keyFile ? 'deployer.keyFile ' : 'deployer key '}${path}: ${(e as Error).message}`, { path }, { cause: e });
    }
  } else {
    privateKey = generateKeyPairSync('ed25519').privateKey;
    await writeFileAtomic(path, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600);
  }
  const pub = createPublicKey(privateKey);
  if (pub.asymmetricKeyType !== 'ed25519') {
    const kind = pub.asymmetricKeyType === 'ec' ? `ECDSA ${pub.asymmetricKeyDetails?.namedCurve ?? ''}`.trim() : String(pub.asymmetricKeyType).toUpperCase();
    throw new CtError(
      'KEY_INVALID',
      `${keyFile ? 'deployer.keyFile ' : 'deployer key '}${path} holds a key of type ${kind}: deploy VSAs are signed with Ed25519 keys only (a trust store lists no other kind); make one with  openssl genpkey -algorithm ed25519 -out deployer.pem`,
      { path, keyType: pub.asymmetricKeyType },
    );
  }
  return { privateKey, keyId: keyIdOf(pub), publicKey: spkiBase64(pub), algorithm: 'ed25519' };
}
