import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { CtError } from '../core/errors.js';

/** C2SP signed-note signature type byte for Ed25519. */
export const ED25519_ALG = 0x01;

/** The 32 raw bytes of an Ed25519 public (or private) key. */
export function rawEd25519(key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  if (pub.asymmetricKeyType !== 'ed25519') throw new CtError('KEY_INVALID', `log key must be Ed25519, not ${pub.asymmetricKeyType}`);
  const jwk = pub.export({ format: 'jwk' });
  return Buffer.from(jwk.x as string, 'base64url');
}

/** C2SP signed-note key hash: first 4 bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ pubkey). */
export function noteKeyHash(name: string, key: KeyObject): Buffer {
  return createHash('sha256')
    .update(Buffer.from(name, 'utf8'))
    .update(Buffer.from([0x0a, ED25519_ALG]))
    .update(rawEd25519(key))
    .digest()
    .subarray(0, 4);
}

/** C2SP verifier key string `<name>+<hex key hash>+<base64(0x01 ‖ pubkey)>` (as Go's note.NewVerifier reads). */
export function noteVerifierKey(name: string, key: KeyObject): string {
  const raw = Buffer.concat([Buffer.from([ED25519_ALG]), rawEd25519(key)]);
  return `${name}+${noteKeyHash(name, key).toString('hex')}+${raw.toString('base64')}`;
}

/** A key name per C2SP signed-note: non-empty, no whitespace and no '+'. */
export function isNoteKeyName(name: unknown): name is string {
  return typeof name === 'string' && name.length > 0 && !/[\s+]/u.test(name);
}
