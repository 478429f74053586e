// Property tests (fast-check, fixed seeds): proofs from MerkleTree verify for sampled (index,
// size) and (size1, size2) pairs in trees up to 10,000 leaves, match the RFC 6962 recursive
// definitions literally on small trees, and stop verifying when any one input is altered.
import { describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { MerkleTree, leafHash, nodeHash, rootFromInclusion, verifyConsistency, verifyInclusion } from '../../src/tlog/index.js';
import { leafHashLatin1, nodeHashLatin1 } from '../../src/tlog/hashes.js';
import { ProofNodes } from '../../src/tlog/verify-proofs.js';

const MAX = 10_000;
// Leaves are derived from their index and a fixed salt, so the tree is the same in every run.
const entries = Array.from({ length: MAX }, (_, i) => createHash('sha256').update(`salt-7:${i}`).digest().subarray(0, 1 + (i % 31)));
const big = new MerkleTree(entries);
const roots = new Map<number, Buffer>();
const rootOf = (n: number): Buffer => {
  if (!roots.has(n)) roots.set(n, big.root(n));
  return roots.get(n)!;
};

// RFC 6962 §2.1 definitions, written as the RFC states them, over arrays of leaf hashes.
function k(n: number): number {
  let p = 1;
  while (p * 2 < n) p *= 2;
  return p;
}
function mth(d: Buffer[]): Buffer {
  if (d.length === 0) return createHash('sha256').digest();
  if (d.length === 1) return d[0];
  return nodeHash(mth(d.slice(0, k(d.length))), mth(d.slice(k(d.length))));
}
function path(m: number, d: Buffer[]): Buffer[] {
  if (d.length <= 1) return [];
  const s = k(d.length);
  return m < s ? [...path(m, d.slice(0, s)), mth(d.slice(s))] : [...path(m - s, d.slice(s)), mth(d.slice(0, s))];
}
function subproof(m: number, d: Buffer[], b: boolean): Buffer[] {
  if (m === d.length) return b ? [] : [mth(d)];
  const s = k(d.length);
  return m <= s ? [...subproof(m, d.slice(0, s), b), mth(d.slice(s))] : [...subproof(m - s, d.slice(s), false), mth(d.slice(0, s))];
}

/** Alterations are only meaningful when the proof isn't also the genuine proof for the altered input. */
const same = (a: Buffer[], b: Buffer[]): boolean => a.length === b.length && a.every((h, i) => h.equals(b[i]));

const flip = (b: Buffer, at: number): Buffer => {
  const c = Buffer.from(b);
  c[at % c.length] ^= 1 << at % 8;
  return c;
};

describe('proofs agree with the RFC 6962 recursive definitions (trees of 0..32 leaves)', () => {
  const leaves = entries.slice(0, 32).map(leafHash);
  it('roots, inclusion and consistency proofs are identical', () => {
    for (let n = 0; n <= 32; n++) {
      expect(big.root(n).equals(mth(leaves.slice(0, n)))).toBe(true);
      for (let m = 0; m < n; m++) expect(big.inclusionProof(m, n)).toEqual(path(m, leaves.slice(0, n)));
      for (let m = 1; m < n; m++) expect(big.consistencyProof(m, n)).toEqual(subproof(m, leaves.slice(0, n), true));
    }
  });
});

describe('inclusion proofs (sampled from trees of up to 10,000 leaves)', () => {
  const pair = fc.integer({ min: 1, max: MAX }).chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 0, max: n - 1 })));

  it('verify for their leaf, index, size and root', () => {
    fc.assert(
      fc.property(pair, ([n, i]) => verifyInclusion(big.leaf(i), i, n, big.inclusionProof(i, n), rootOf(n))),
      { seed: 6962, numRuns: 400 },
    );
  });

  it('fail when one proof hash is altered, or one is dropped or added', () => {
    fc.assert(
      fc.property(pair, fc.nat(), fc.nat(), ([n, i], which, bit) => {
        const proof = big.inclusionProof(i, n);
        const root = rootOf(n);
        if (proof.length > 0) {
          const bad = [...proof];
          bad[which % proof.length] = flip(bad[which % proof.length], bit);
          expect(verifyInclusion(big.leaf(i), i, n, bad, root)).toBe(false);
          expect(verifyInclusion(big.leaf(i), i, n, proof.slice(0, -1), root)).toBe(false);
        }
        expect(verifyInclusion(big.leaf(i), i, n, [...proof, root], root)).toBe(false);
        expect(verifyInclusion(flip(big.leaf(i), bit), i, n, proof, root)).toBe(false);
        expect(verifyInclusion(big.leaf(i), i, n, proof, flip(root, bit))).toBe(false);
      }),
      { seed: 9162, numRuns: 300 },
    );
  });

  it('fail for another index, and for another size with that size\'s root', () => {
    fc.assert(
      fc.property(pair, fc.integer({ min: 1, max: MAX }), fc.integer({ min: 1, max: MAX }), ([n, i], di, n2) => {
        const proof = big.inclusionProof(i, n);
        const j = (i + di) % n;
        if (j !== i) expect(verifyInclusion(big.leaf(i), j, n, proof, rootOf(n))).toBe(false);
        if (n2 !== n && i < n2 && !same(big.inclusionProof(i, n2), proof)) expect(verifyInclusion(big.leaf(i), i, n2, proof, rootOf(n2))).toBe(false);
        // Out of range index never verifies.
        expect(rootFromInclusion(big.leaf(i), n, n, proof)).toBeNull();
      }),
      { seed: 1337, numRuns: 300 },
    );
  });
});

describe('consistency proofs (sampled from trees of up to 10,000 leaves)', () => {
  const pair = fc.integer({ min: 1, max: MAX }).chain((n2) => fc.tuple(fc.integer({ min: 0, max: n2 }), fc.constant(n2)));

  it('verify between their two roots', () => {
    fc.assert(
      fc.property(pair, ([n1, n2]) => verifyConsistency(n1, n2, big.consistencyProof(n1, n2), rootOf(n1), rootOf(n2))),
      { seed: 2024, numRuns: 400 },
    );
  });

  it('fail when a proof hash, a root, or a size is altered', () => {
    fc.assert(
      fc.property(pair, fc.nat(), fc.nat(), fc.integer({ min: 1, max: MAX }), ([n1, n2], which, bit, other) => {
        const proof = big.consistencyProof(n1, n2);
        const r1 = rootOf(n1);
        const r2 = rootOf(n2);
        if (proof.length > 0) {
          const bad = [...proof];
          bad[which % proof.length] = flip(bad[which % proof.length], bit);
          expect(verifyConsistency(n1, n2, bad, r1, r2)).toBe(false);
          expect(verifyConsistency(n1, n2, proof.slice(1), r1, r2)).toBe(false);
        }
        if (n1 > 0) expect(verifyConsistency(n1, n2, proof, flip(r1, bit), r2)).toBe(false);
        if (n1 > 0 && n1 !== n2) expect(verifyConsistency(n1, n2, proof, r1, flip(r2, bit))).toBe(false);
        // A different first size (with its own root) or second size (with its own root) fails.
        const m1 = other % (n2 + 1);
        if (m1 !== n1 && !same(big.consistencyProof(m1, n2), proof)) expect(verifyConsistency(m1, n2, proof, rootOf(m1), r2)).toBe(false);
        if (other !== n2 && other >= n1 && !same(big.consistencyProof(n1, other), proof)) expect(verifyConsistency(n1, other, proof, r1, rootOf(other))).toBe(false);
        if (n1 < n2) expect(verifyConsistency(n2, n1, proof, r2, r1)).toBe(false);
      }),
      { seed: 4242, numRuns: 300 },
    );
  });
});

// #14 target 6: the verifiers carry hashes as latin1 strings between steps (hashes.ts). Same bytes,
// same answers as the Buffer functions; a string of the wrong length is never padded or cut.
describe('latin1 hash values', () => {
  it('leafHashLatin1 / nodeHashLatin1 equal the Buffer functions and verifyInclusion accepts either leaf form', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: MAX }).chain((n) => fc.tuple(fc.integer({ min: 0, max: n - 1 }), fc.constant(n))), ([i, n]) => {
        const leafBuf = leafHash(entries[i]);
        const leafStr = leafHashLatin1(entries[i]);
        expect(Buffer.from(leafStr, 'latin1').equals(leafBuf)).toBe(true);
        const proof = big.inclusionProof(i, n);
        expect(verifyInclusion(leafStr, i, n, proof, rootOf(n))).toBe(true);
        expect(verifyInclusion(leafBuf, i, n, proof, rootOf(n))).toBe(true);
        expect(verifyInclusion(leafStr.slice(1), i, n, proof, rootOf(n))).toBe(false);
        if (proof.length > 0) {
          expect(Buffer.from(nodeHashLatin1(leafStr, proof[0]), 'latin1').equals(nodeHash(leafBuf, proof[0]))).toBe(true);
          expect(nodeHashLatin1(leafStr, proof[0].toString('latin1'))).toBe(nodeHashLatin1(leafBuf, proof[0]));
        }
      }),
      { seed: 1406, numRuns: 300 },
    );
    const odd = Buffer.from([1, 2, 3]);
    expect(Buffer.from(nodeHashLatin1(odd, 'ab'), 'latin1').equals(createHash('sha256').update(Buffer.from([1, 1, 2, 3, 0x61, 0x62])).digest())).toBe(true);
  });
});

// #14 target 6: one ProofNodes shared by every proof a verification checks (adjacent entries,
// proof elements that are the same Buffer object) never changes an answer: a tampered proof checked
// after, before or between honest ones of the same tree is still refused, and an honest one after
// a tampered one still verifies.
describe('interior nodes remembered across proofs of one verification', () => {
  it('gives the answers verifyInclusion gives alone, tampered proofs mixed in', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: MAX }), fc.nat(), fc.array(fc.tuple(fc.nat(), fc.boolean(), fc.nat(), fc.nat()), { minLength: 2, maxLength: 8 }), (n, start, picks) => {
        const nodes = new ProofNodes();
        // Equal hashes as one object, as parse.ts decodes them.
        const interned = new Map<string, Buffer>();
        const intern = (b: Buffer) => interned.get(b.toString('hex')) ?? (interned.set(b.toString('hex'), b), b);
        for (const [off, tamper, which, bit] of picks) {
          const i = (start + (off % 4)) % n; // neighbours: shared paths
          let proof = big.inclusionProof(i, n).map(intern);
          if (tamper && proof.length > 0) {
            proof = [...proof];
            proof[which % proof.length] = intern(flip(proof[which % proof.length], bit));
          }
          const alone = verifyInclusion(big.leaf(i), i, n, proof, rootOf(n));
          expect(verifyInclusion(big.leaf(i), i, n, proof, rootOf(n), nodes)).toBe(alone);
          expect(verifyInclusion(leafHashLatin1(entries[i]), i, n, proof, rootOf(n), nodes)).toBe(alone);
          expect(alone).toBe(!tamper || proof.length === 0);
          // Another leaf along a path whose nodes are all remembered: still refused.
          expect(verifyInclusion(flip(big.leaf(i), bit), i, n, proof, rootOf(n), nodes)).toBe(false);
        }
      }),
      { seed: 14_6, numRuns: 300 },
    );
  });
});
