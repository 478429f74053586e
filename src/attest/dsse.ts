import { CtError } from '../core/errors.js';

export const INTOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';

export interface DsseSignature { keyid: string; sig: string }
export interface DsseEnvelope { payloadType: string; payload: string; signatures: DsseSignature[] }

/** Which pre-authentication encoding a signature was made over (SPEC §4). */
export type PaeVariant = 'standard' | 'legacy';

/**
 * DSSE pre-authentication encoding: "DSSEv1" SP len(type) SP type SP len(body) SP body, lengths
 * in bytes, over the DECODED payload. The upstream MVP producer signs the base64 text instead;
 * that is the `legacy` variant, accepted only when a caller asks for it.
 */
export function pae(payloadType: string, body: Uint8Array): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${type.length} `, 'utf8'),
    type,
    Buffer.from(` ${body.length} `, 'utf8'),
    body,
  ]);
}

export function paeFor(env: DsseEnvelope, variant: PaeVariant): Buffer {
  const body = variant === 'standard' ? decodePayload(env) : Buffer.from(env.payload, 'utf8');
  return pae(env.payloadType, body);
}

const B64_RE = /^[A-Za-z0-9+/]*={0,2}$/;
const B64URL_RE = /^[A-Za-z0-9_-]*={0,2}$/;

/** Strict base64 (standard or URL alphabet, as DSSE allows); rejects anything Buffer would skip. */
export function decodeBase64Strict(s: string, where: string): Buffer {
  if (typeof s !== 'string' || (!B64_RE.test(s) && !B64URL_RE.test(s)) || s.replace(/=+$/, '').length % 4 === 1) {
    throw new CtError('MALFORMED_BUNDLE', `${where}: not valid base64`, { where });
  }
  return Buffer.from(s, B64_RE.test(s) ? 'base64' : 'base64url');
}

export function decodePayload(env: DsseEnvelope): Buffer {
  return decodeBase64Strict(env.payload, 'envelope.payload');
}

/** Structural check of an envelope from untrusted JSON; reports the first bad field. */
export function assertEnvelope(v: unknown, where = 'envelope'): asserts v is DsseEnvelope {
  const e = v as Partial<DsseEnvelope> | null;
  if (!e || typeof e !== 'object' || Array.isArray(e)) throw new CtError('MALFORMED_BUNDLE', `${where}: not an object`, { where });
  if (typeof e.payloadType !== 'string') throw new CtError('MALFORMED_BUNDLE', `${where}.payloadType: missing or not a string`, { where });
  if (typeof e.payload !== 'string') throw new CtError('MALFORMED_BUNDLE', `${where}.payload: missing or not a string`, { where });
  if (!Array.isArray(e.signatures)) throw new CtError('MALFORMED_BUNDLE', `${where}.signatures: missing or not an array`, { where });
  e.signatures.forEach((s, i) => {
    if (!s || typeof s !== 'object' || typeof s.sig !== 'string' || (s.keyid !== undefined && typeof s.keyid !== 'string')) {
      throw new CtError('MALFORMED_BUNDLE', `${where}.signatures[${i}]: needs string keyid and sig`, { where });
    }
  });
}
