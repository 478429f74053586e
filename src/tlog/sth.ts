import { sign, verify, type KeyObject } from 'node:crypto';
import { canonicalBytes } from '../core/jcs.js';

/**
 * VCS signed tree head `{treeSize, timestamp, rootHash, signature}` (transparency-log schema).
 * Upstream names no signed bytes; we sign the JCS form of the head without `signature`
 * ({rootHash, timestamp, treeSize}, root as lower-case hex), with the log's Ed25519 key. The
 * C2SP checkpoint (checkpoint.ts) is the form witnesses and consistency checks use.
 */
export interface SignedTreeHead {
  treeSize: number;
  timestamp: string;
  rootHash: string;
  signature: string;
}

function sthBytes(h: Omit<SignedTreeHead, 'signature'>): Buffer {
  return canonicalBytes({ treeSize: h.treeSize, timestamp: h.timestamp, rootHash: h.rootHash });
}

export function signTreeHead(h: Omit<SignedTreeHead, 'signature'>, privateKey: KeyObject): SignedTreeHead {
  return { treeSize: h.treeSize, timestamp: h.timestamp, rootHash: h.rootHash, signature: sign(null, sthBytes(h), privateKey).toString('base64') };
}

export function verifyTreeHead(h: SignedTreeHead, publicKey: KeyObject): boolean {
  if (typeof h !== 'object' || h === null || typeof h.signature !== 'string' || !/^[A-Za-z0-9+/]{86}==$/.test(h.signature)) return false;
  if (!Number.isSafeInteger(h.treeSize) || h.treeSize < 0 || typeof h.timestamp !== 'string' || !/^[0-9a-f]{64}$/.test(String(h.rootHash))) return false;
  try {
    return verify(null, sthBytes(h), publicKey, Buffer.from(h.signature, 'base64'));
  } catch {
    return false;
  }
}
