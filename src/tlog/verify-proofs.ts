import { EMPTY_ROOT, HASH_SIZE, isPowerOfTwo, nodeHash, nodeHashLatin1, type HashValue } from './hashes.js';

/*
 * Proof verification exactly as RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency) state
 * it. Indices and sizes are safe integers (up to 2^53), so halving uses arithmetic rather than
 * the 32-bit bitwise operators.
 */

const isOdd = (n: number): boolean => n % 2 === 1;
const half = (n: number): number => Math.floor(n / 2);

function validSizes(...ns: number[]): boolean {
  return ns.every((n) => Number.isSafeInteger(n) && n >= 0);
}

function validHashes(hs: readonly Buffer[]): boolean {
  return Array.isArray(hs) && hs.every((h) => Buffer.isBuffer(h) && h.length === HASH_SIZE);
}

/**
 * The root implied by an inclusion proof for `leaf` at `index` in a tree of `treeSize` leaves,
 * or null when the proof has the wrong shape (too short, too long, index out of range).
 */
export function rootFromInclusion(leaf: Buffer, index: number, treeSize: number, proof: readonly Buffer[]): Buffer | null {
  const r = inclusionRootLatin1(leaf, index, treeSize, proof);
  return r === null ? null : Buffer.from(r, 'latin1');
}

/**
 * rootFromInclusion with the running hash carried as a latin1 string (hashes.ts says why: about
 * a third of the cost per step). `leaf` may be a Buffer or such a string.
 */
function inclusionRootLatin1(leaf: HashValue, index: number, treeSize: number, proof: readonly Buffer[], nodes?: ProofNodes): string | null {
  if (!validSizes(index, treeSize) || index >= treeSize) return null;
  const leafOk = typeof leaf === 'string' ? leaf.length === HASH_SIZE : Buffer.isBuffer(leaf) && leaf.length === HASH_SIZE;
  if (!leafOk || !validHashes(proof)) return null;
  let fn = index;
  let sn = treeSize - 1;
  let r: HashValue = nodes && typeof leaf !== 'string' ? leaf.toString('latin1') : leaf;
  for (const p of proof) {
    if (sn === 0) return null;
    if (isOdd(fn) || fn === sn) {
      r = nodes ? nodes.hash(p, r as string, true) : nodeHashLatin1(p, r);
      if (!isOdd(fn)) {
        while (!(isOdd(fn) || fn === 0)) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = nodes ? nodes.hash(p, r as string, false) : nodeHashLatin1(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) return null;
  return typeof r === 'string' ? r : r.toString('latin1');
}

/**
 * Interior nodes already hashed while checking several inclusion proofs, for one verification.
 * Entries logged together sit side by side in a log, so their paths share most nodes (a VCS
 * bundle's six proofs of depth 8 hash 14 distinct nodes out of 46). Keyed by the exact inputs:
 * the proof element (the same Buffer object when the caller decoded equal hashes once, see
 * parse.ts) and the running hash, with the side it sits on; never by position, so a proof that
 * lies about a node is still hashed from what it says. A key built from the 64 bytes cost as much
 * as the hash it saves; object identity plus a 32-character string does not.
 */
export class ProofNodes {
  private readonly left = new Map<Buffer, Map<string, string>>();
  private readonly right = new Map<Buffer, Map<string, string>>();
  /** H(0x01 ‖ p ‖ r) when `pLeft`, else H(0x01 ‖ r ‖ p). */
  hash(p: Buffer, r: string, pLeft: boolean): string {
    const side = pLeft ? this.left : this.right;
    let byR = side.get(p);
    if (!byR) side.set(p, (byR = new Map()));
    let h = byR.get(r);
    if (h === undefined) {
      h = pLeft ? nodeHashLatin1(p, r) : nodeHashLatin1(r, p);
      byR.set(r, h);
    }
    return h;
  }
}

/** Whether the proof proves `leaf` (a Buffer, or a latin1 string from leafHashLatin1) under `root`. */
export function verifyInclusion(leaf: HashValue, index: number, treeSize: number, proof: readonly Buffer[], root: Buffer, nodes?: ProofNodes): boolean {
  const r = inclusionRootLatin1(leaf, index, treeSize, proof, nodes);
  return r !== null && Buffer.isBuffer(root) && root.length === HASH_SIZE && root.toString('latin1') === r;
}

/**
 * RFC 9162 §2.1.4.2. Edge cases decided as transparency-dev/merkle does: equal sizes need an
 * empty proof and equal roots; size1 = 0 needs an empty proof (and root1 must be the empty-tree
 * hash); size1 > size2 never verifies.
 */
export function verifyConsistency(size1: number, size2: number, proof: readonly Buffer[], root1: Buffer, root2: Buffer): boolean {
  if (!validSizes(size1, size2) || size1 > size2 || !validHashes(proof)) return false;
  if (!Buffer.isBuffer(root1) || !Buffer.isBuffer(root2) || root1.length !== HASH_SIZE || root2.length !== HASH_SIZE) return false;
  if (size1 === size2) return proof.length === 0 && root1.equals(root2);
  if (size1 === 0) return proof.length === 0 && root1.equals(EMPTY_ROOT);
  if (proof.length === 0) return false;

  const path = isPowerOfTwo(size1) ? [root1, ...proof] : [...proof];
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (isOdd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (isOdd(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (!isOdd(fn)) {
        while (!(isOdd(fn) || fn === 0)) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && fr.equals(root1) && sr.equals(root2);
}
