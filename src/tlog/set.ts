import { sign, verify, type KeyObject } from 'node:crypto';

/**
 * Signed entry timestamp, byte-compatible with the upstream MVP producer (SPEC §4): the log's
 * Ed25519 signature over the canonical (JCS) entry bytes, base64 (standard alphabet, padded).
 * The entry's `timestamp` is the integration time, so the signature covers it. Ed25519 is
 * deterministic, so a log can re-derive a SET instead of storing it.
 */
export function signSet(entryBytes: Uint8Array, privateKey: KeyObject): string {
  return sign(null, entryBytes, privateKey).toString('base64');
}

const STRICT_B64_64 = /^[A-Za-z0-9+/]{86}==$/;

export function verifySet(entryBytes: Uint8Array, setB64: string, logPublicKey: KeyObject): boolean {
  // An Ed25519 signature is 64 bytes: exactly 86 base64 characters plus "==". Anything else
  // (other alphabets, whitespace, missing padding) is rejected rather than leniently decoded.
  if (typeof setB64 !== 'string' || !STRICT_B64_64.test(setB64)) return false;
  return verifySetBytes(entryBytes, Buffer.from(setB64, 'base64'), logPublicKey);
}

/** verifySet for a SET its caller already decoded from canonical base64 (the VCS parser does). */
export function verifySetBytes(entryBytes: Uint8Array, set: Buffer, logPublicKey: KeyObject): boolean {
  if (set.length !== 64) return false;
  try {
    return verify(null, entryBytes, logPublicKey, set);
  } catch {
    return false;
  }
}
