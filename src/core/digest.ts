import { hash } from 'node:crypto';
import { CtError } from './errors.js';

export const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

/** One-shot crypto.hash: a third of the cost of a Hash object for the short inputs verifiers digest. */
export function sha256Hex(data: Uint8Array | string): string {
  return hash('sha256', data, 'hex');
}

export function sha256Digest(data: Uint8Array | string): string {
  return `sha256:${sha256Hex(data)}`;
}

export function isDigest(s: unknown): s is string {
  return typeof s === 'string' && DIGEST_RE.test(s);
}

/** Hex part of a `sha256:<hex>` digest; throws MALFORMED_BUNDLE for anything else. */
export function digestHex(digest: string, where = 'digest'): string {
  if (!isDigest(digest)) throw new CtError('MALFORMED_BUNDLE', `${where}: not a sha256 digest: ${JSON.stringify(digest).slice(0, 80)}`, { where });
  return digest.slice(7);
}
