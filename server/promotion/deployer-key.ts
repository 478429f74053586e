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
  // An empty keyFile means unset, as it did before the Ed25519 check: `keyFile: ""` (a templated
  // config with the value left out) stopped the start reading "" as a file.
  const given = keyFile || undefined;
  const path = given ?? join(dataDir, 'deployer-key.pem');
  const what = `${given ? 'deployer.keyFile ' : 'deployer key '}${path}`;
  let privateKey: KeyObject;
  if (given || existsSync(path)) {
    let pem: Buffer;
    try {
      pem = readFileSync(path);
    } catch (e) {
      // Not the key's fault (EACCES, EISDIR, ENOENT): an operator fixes the file's access, not the key.
      throw new CtError('IO_ERROR', `${what}: ${(e as Error).message}`, { path, errno: (e as NodeJS.ErrnoException).code }, { cause: e });
    }
    try {
      privateKey = createPrivateKey(pem);
    } catch (e) {
      throw new CtError('KEY_INVALID', `${what}: ${(e as Error).message}`, { path }, { cause: e });
    }
  } else {
    privateKey = generateKeyPairSync('ed25519').privateKey;
    await writeFileAtomic(path, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600);
  }
  const pub = createPublicKey(privateKey);
  if (pub.asymmetricKeyType !== 'ed25519') {
    throw new CtError(
      'KEY_INVALID',
      `${what} holds a key of type ${keyKind(pub)}: deploy VSAs are signed with Ed25519 keys only (a trust store lists no other kind); make one with  openssl genpkey -algorithm ed25519 -out deployer.pem`,
      { path, keyType: pub.asymmetricKeyType },
    );
  }
  return { privateKey, keyId: keyIdOf(pub), publicKey: spkiBase64(pub), algorithm: 'ed25519' };
}

/** OpenSSL's curve names (prime256v1) are not the ones the docs and operators use (P-256). */
const CURVES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

function keyKind(pub: KeyObject): string {
  if (pub.asymmetricKeyType !== 'ec') return String(pub.asymmetricKeyType).toUpperCase();
  const curve = pub.asymmetricKeyDetails?.namedCurve;
  return `ECDSA ${curve ? (CURVES[curve] ?? curve) : ''}`.trim();
}
