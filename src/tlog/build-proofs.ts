import { CtError } from '../core/errors.js';
import { EMPTY_ROOT, isPowerOfTwo, log2Exact, nodeHash, splitPoint } from './hashes.js';

/**
 * Where proofs get their hashes from: the perfect subtree of 2^level leaves starting at leaf
 * index·2^level. Only complete subtrees are ever asked for, so a store can keep exactly those
 * (one row per (level, index)) and answer any proof with O(log n) lookups.
 */
export interface NodeSource {
  /** Number of leaves currently held. */
  readonly size: number;
  node(level: number, index: number): Buffer;
}

function checkSize(src: NodeSource, treeSize: number, what: string): void {
  if (!Number.isSafeInteger(treeSize) || treeSize < 0 || treeSize > src.size) {
    throw new CtError('USAGE', `${what}: tree size ${treeSize} is not between 0 and ${src.size}`, { treeSize, size: src.size });
  }
}

/**
 * MTH(D[start:start+n]) (RFC 6962 §2.1) for a range whose start is aligned as the RFC's
 * recursion produces them: perfect aligned ranges come straight from the source, others are
 * split at the largest power of two below n. Costs O(log n) lookups and hashes.
 */
export function rangeRoot(src: NodeSource, start: number, n: number, memo?: RangeMemo): Buffer {
  if (n === 0) return EMPTY_ROOT;
  if (isPowerOfTwo(n) && start % n === 0) return src.node(log2Exact(n), start / n);
  const key = `${start}+${n}`;
  const known = memo?.get(key);
  if (known) return known;
  const k = splitPoint(n);
  const h = nodeHash(rangeRoot(src, start, k, memo), rangeRoot(src, start + k, n - k, memo));
  memo?.set(key, h);
  return h;
}

/**
 * Roots of non-perfect ranges already computed, keyed "start+n". Proofs for many indices at one
 * tree size (a batch of appends) share the right-edge ranges; pass one memo to all of them.
 */
export type RangeMemo = Map<string, Buffer>;

export function rootAt(src: NodeSource, treeSize: number): Buffer {
  checkSize(src, treeSize, 'root');
  return rangeRoot(src, 0, treeSize);
}

/** PATH(m, D[n]) of RFC 6962 §2.1.1, leaf-side hash first. */
export function inclusionProof(src: NodeSource, index: number, treeSize: number, memo?: RangeMemo): Buffer[] {
  checkSize(src, treeSize, 'inclusion proof');
  if (!Number.isSafeInteger(index) || index < 0 || index >= treeSize) {
    throw new CtError('USAGE', `inclusion proof: index ${index} is not below tree size ${treeSize}`, { index, treeSize });
  }
  const out: Buffer[] = [];
  // Iterative form of the recursion: walk down, collecting siblings, then reverse.
  let start = 0;
  let n = treeSize;
  let m = index;
  while (n > 1) {
    const k = splitPoint(n);
    if (m < k) {
      out.push(rangeRoot(src, start + k, n - k, memo));
      n = k;
    } else {
      out.push(rangeRoot(src, start, k, memo));
      start += k;
      m -= k;
      n -= k;
    }
  }
  return out.reverse();
}

/** PROOF(m, D[n]) = SUBPROOF(m, D[n], true) of RFC 6962 §2.1.2. */
export function consistencyProof(src: NodeSource, size1: number, size2: number): Buffer[] {
  checkSize(src, size2, 'consistency proof');
  if (!Number.isSafeInteger(size1) || size1 < 0 || size1 > size2) {
    throw new CtError('USAGE', `consistency proof: first size ${size1} is not between 0 and ${size2}`, { size1, size2 });
  }
  if (size1 === 0 || size1 === size2) return [];
  const out: Buffer[] = [];
  let start = 0;
  let n = size2;
  let m = size1;
  let b = true;
  while (m !== n) {
    const k = splitPoint(n);
    if (m <= k) {
      out.push(rangeRoot(src, start + k, n - k));
      n = k;
    } else {
      out.push(rangeRoot(src, start, k));
      start += k;
      m -= k;
      n -= k;
      b = false;
    }
  }
  if (!b) out.push(rangeRoot(src, start, n));
  return out.reverse();
}
