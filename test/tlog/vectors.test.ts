// Known-answer tests. RFC 6962 vectors: the leaves, roots and proofs of the certificate-transparency
// reference test suite (as kept in transparency-dev/merkle testonly/constants.go). Signed-note
// vector: the PeterNeumann key and note of golang.org/x/mod/sumdb/note (note_test.go).
import { describe, expect, it } from '@jest/globals';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { isCtError } from '../../src/core/errors.js';
import {
  EMPTY_ROOT,
  MerkleTree,
  leafHash,
  noteKeyHash,
  noteVerifierKey,
  signCheckpoint,
  signNote,
  splitNote,
  verifyCheckpoint,
  verifyNote,
  verifyConsistency,
  verifyInclusion,
} from '../../src/tlog/index.js';

const hd = (s: string): Buffer => Buffer.from(s, 'hex');
const LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(hd);
const ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
const INCLUSION: { index: number; size: number; proof: string[] }[] = [
  { index: 0, size: 8, proof: ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4'] },
  { index: 5, size: 8, proof: ['bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7'] },
];
const CONSISTENCY: { size1: number; size2: number; proof: string[] }[] = [
  { size1: 1, size2: 1, proof: [] },
  { size1: 1, size2: 8, proof: ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4'] },
  { size1: 6, size2: 8, proof: ['0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7'] },
  { size1: 2, size2: 5, proof: ['5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b'] },
];

describe('RFC 6962 known answers', () => {
  const tree = new MerkleTree(LEAVES);

  it('empty tree root is SHA-256 of the empty string', () => {
    expect(EMPTY_ROOT.toString('hex')).toBe(ROOTS[0]);
    expect(new MerkleTree().root().toString('hex')).toBe(ROOTS[0]);
  });

  it('roots of every prefix size 1..8 match', () => {
    for (let n = 0; n <= 8; n++) expect(tree.root(n).toString('hex')).toBe(ROOTS[n]);
    // and a tree built to exactly n leaves (frontier fold) agrees
    for (let n = 1; n <= 8; n++) expect(new MerkleTree(LEAVES.slice(0, n)).root().toString('hex')).toBe(ROOTS[n]);
  });

  it('inclusion proofs match and verify', () => {
    for (const v of INCLUSION) {
      expect(tree.inclusionProof(v.index, v.size).map((h) => h.toString('hex'))).toEqual(v.proof);
      expect(verifyInclusion(leafHash(LEAVES[v.index]), v.index, v.size, v.proof.map(hd), hd(ROOTS[v.size]))).toBe(true);
      expect(verifyInclusion(leafHash(LEAVES[v.index + 1]), v.index, v.size, v.proof.map(hd), hd(ROOTS[v.size]))).toBe(false);
    }
  });

  it('consistency proofs match and verify', () => {
    for (const v of CONSISTENCY) {
      expect(tree.consistencyProof(v.size1, v.size2).map((h) => h.toString('hex'))).toEqual(v.proof);
      expect(verifyConsistency(v.size1, v.size2, v.proof.map(hd), hd(ROOTS[v.size1]), hd(ROOTS[v.size2]))).toBe(true);
    }
    expect(verifyConsistency(6, 8, CONSISTENCY[2].proof.map(hd), hd(ROOTS[5]), hd(ROOTS[8]))).toBe(false);
  });
});

describe('C2SP signed note known answer (Go sumdb/note PeterNeumann vector)', () => {
  const seed = Buffer.from('AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz', 'base64').subarray(1);
  const priv = createPrivateKey({ key: Buffer.concat([hd('302e020100300506032b657004220420'), seed]), format: 'der', type: 'pkcs8' });
  const pub = createPublicKey(priv);
  const TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
  const NOTE = `${TEXT}\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`;

  it('key hash and verifier key match the Go reference', () => {
    expect(noteKeyHash('PeterNeumann', pub).toString('hex')).toBe('c74f20a3');
    expect(noteVerifierKey('PeterNeumann', pub)).toBe('PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW');
  });

  it('signing the note text reproduces the Go note byte for byte, and it verifies', () => {
    expect(signNote(TEXT, 'PeterNeumann', priv)).toBe(NOTE);
    expect(verifyNote(NOTE, 'PeterNeumann', pub)).toBe(TEXT);
    expect(splitNote(NOTE).signatures[0].keyHash.toString('hex')).toBe('c74f20a3');
    expect(() => verifyNote(NOTE.replace('cryptography', 'cryptographY'), 'PeterNeumann', pub)).toThrow();
  });

  it('a checkpoint signed with the same key carries the same key hash and verifies', () => {
    const cp = signCheckpoint({ origin: 'PeterNeumann', treeSize: 1, rootHash: hd(ROOTS[1]) }, 'PeterNeumann', priv);
    expect(splitNote(cp).signatures[0].keyHash.toString('hex')).toBe('c74f20a3');
    expect(verifyCheckpoint(cp, 'PeterNeumann', pub).treeSize).toBe(1);
  });

  it('the reference note is not a checkpoint, so verifyCheckpoint rejects it with LOG_PROOF_INVALID', () => {
    let err: unknown;
    try {
      verifyCheckpoint(NOTE, 'PeterNeumann', pub);
    } catch (e) {
      err = e;
    }
    expect(isCtError(err, 'LOG_PROOF_INVALID')).toBe(true);
  });
});
