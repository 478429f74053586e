import { createHash, hash } from 'node:crypto';

/**
 * RFC 6962 §2.1 hashing with domain separation, so that a leaf can never be passed off as an
 * interior node (second-preimage protection): leaf = H(0x00 ‖ entry), node = H(0x01 ‖ l ‖ r).
 */
const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = Buffer.from([0x01]);

export const HASH_SIZE = 32;

/** MTH({}) = SHA-256 of the empty string (RFC 6962 §2.1). */
export const EMPTY_ROOT: Buffer = createHash('sha256').digest();

// One-shot crypto.hash (Node >= 20.12) instead of a Hash object per call, and the input written
// into a reused buffer instead of a Buffer.concat per call: crypto.hash reads its input
// synchronously, so one input buffer per thread is safe to reuse. The digest is asked for as a
// latin1 string (one byte per character): Node builds a Buffer result through a fresh
// ArrayBuffer, which costs about twice the hash itself, while a 32-character string is cheap and
// writes back into the input buffer without any allocation. Measured on Node 20.20 (CPU time,
// median of interleaved rounds): node hash 1420 ns (Buffer result) → 380 ns (latin1 result);
// an 8-hash inclusion path 11 µs → 4.5 µs. Earlier: leaf 2160 ns (createHash) → 1850 ns (hash +
// concat) → 1600 ns (hash + reused buffer). This matters when building a log of a million
// entries and for the Merkle paths every verification recomputes. Inputs that do not fit take
// the concat path; the bytes hashed are the same either way (RFC 6962 vectors in
// test/tlog/vectors.test.ts, property tests in test/tlog/proofs.property.test.ts).
const LEAF_INPUT_MAX = 4096;
const LEAF_INPUT = Buffer.alloc(LEAF_INPUT_MAX + 1); // [0] stays 0x00
const NODE_INPUT = Buffer.alloc(1 + 2 * HASH_SIZE);
NODE_INPUT[0] = 0x01;

/**
 * A hash as the verifiers' inner loops carry it: a Buffer, or a latin1 string of 32 characters
 * (each character one byte), as the *Latin1 functions return.
 */
export type HashValue = Buffer | string;

/** The leaf hash as a latin1 string (see HashValue). */
export function leafHashLatin1(entryBytes: Uint8Array): string {
  const n = entryBytes.length;
  if (n > LEAF_INPUT_MAX) return hash('sha256', Buffer.concat([LEAF_PREFIX, entryBytes]), 'binary');
  LEAF_INPUT.set(entryBytes, 1);
  return hash('sha256', LEAF_INPUT.subarray(0, n + 1), 'binary');
}

function put(h: HashValue, offset: number): boolean {
  if (typeof h === 'string') return h.length === HASH_SIZE && NODE_INPUT.write(h, offset, HASH_SIZE, 'latin1') === HASH_SIZE;
  if (h.length !== HASH_SIZE) return false;
  NODE_INPUT.set(h, offset);
  return true;
}

/** The interior-node hash as a latin1 string (see HashValue). */
export function nodeHashLatin1(l: HashValue, r: HashValue): string {
  if (put(l, 1) && put(r, 1 + HASH_SIZE)) return hash('sha256', NODE_INPUT, 'binary');
  // Not two 32-byte hashes: hash exactly what was given (never a silently truncated input).
  const bytes = (h: HashValue) => (typeof h === 'string' ? Buffer.from(h, 'latin1') : h);
  return hash('sha256', Buffer.concat([NODE_PREFIX, bytes(l), bytes(r)]), 'binary');
}

export function leafHash(entryBytes: Uint8Array): Buffer {
  return Buffer.from(leafHashLatin1(entryBytes), 'binary');
}

export function nodeHash(l: Buffer, r: Buffer): Buffer {
  return Buffer.from(nodeHashLatin1(l, r), 'binary');
}

/** Largest power of two strictly less than n (n ≥ 2): the RFC 6962 split point k. */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

export function isPowerOfTwo(n: number): boolean {
  let p = 1;
  while (p < n) p *= 2;
  return p === n;
}

/** log2 of a power of two, exact for every safe integer power. */
export function log2Exact(n: number): number {
  let l = 0;
  while (2 ** l < n) l++;
  return l;
}
