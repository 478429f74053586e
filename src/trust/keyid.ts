import { createPublicKey, type KeyObject } from 'node:crypto';
import { sha256Digest } from '../core/digest.js';
import { CtError } from '../core/errors.js';

/** Key id as VCS defines it: `sha256:` + hex SHA-256 of the key's SPKI DER. */
export function keyIdOf(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return sha256Digest(pub.export({ type: 'spki', format: 'der' }));
}

/** Parses a public key given as base64 SPKI DER (trust-store form) or PEM. */
export function publicKeyFrom(material: string, where = 'publicKey'): KeyObject {
  try {
    if (material.includes('-----BEGIN')) return createPublicKey(material);
    const der = Buffer.from(material, 'base64');
    const key = createPublicKey({ key: der, format: 'der', type: 'spki' });
    // Exactly the DER: OpenSSL ignores trailing bytes, which would give one key many ids.
    if (!(key.export({ type: 'spki', format: 'der' }) as Buffer).equals(der)) throw new Error('trailing or non-canonical bytes after the SPKI DER');
    return key;
  } catch (e) {
    throw new CtError('KEY_INVALID', `${where}: not a public key (${(e as Error).message})`, { where }, { cause: e });
  }
}

export function spkiBase64(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return pub.export({ type: 'spki', format: 'der' }).toString('base64');
}
