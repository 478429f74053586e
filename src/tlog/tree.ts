import { CtError } from '../core/errors.js';
import { consistencyProof, inclusionProof, rootAt, type NodeSource } from './build-proofs.js';
import { EMPTY_ROOT, leafHash, nodeHash } from './hashes.js';

/** A newly completed perfect subtree, produced by an append. */
export interface NewNode {
  level: number;
  index: number;
  hash: Buffer;
}

/**
 * The right edge of an append-only tree: for every set bit of `size`, the hash of the perfect
 * subtree it stands for (the "compact range"). Appending a leaf completes at most log n new
 * perfect subtrees, which is all a store has to write; the root is a fold of the edge.
 */
export class Frontier {
  private edge: (Buffer | undefined)[] = [];
  private n = 0;

  /** Rebuilds the edge of a tree of `size` leaves from its stored perfect subtrees. */
  static fromSource(src: NodeSource, size: number): Frontier {
    const f = new Frontier();
    f.n = size;
    let start = 0;
    for (let level = 60; level >= 0; level--) {
      const span = 2 ** level;
      if (start + span <= size) {
        f.edge[level] = src.node(level, start / span);
        start += span;
      }
    }
    return f;
  }

  get size(): number {
    return this.n;
  }

  clone(): Frontier {
    const f = new Frontier();
    f.edge = [...this.edge];
    f.n = this.n;
    return f;
  }

  /** Adds a leaf hash; returns every perfect subtree it completes (the leaf itself first). */
  append(leaf: Buffer): NewNode[] {
    const out: NewNode[] = [{ level: 0, index: this.n, hash: leaf }];
    let cur = leaf;
    let level = 0;
    let index = this.n;
    while (index % 2 === 1) {
      const left = this.edge[level];
      if (!left) throw new CtError('IO_ERROR', `merkle frontier is missing level ${level}`);
      this.edge[level] = undefined;
      cur = nodeHash(left, cur);
      level++;
      index = Math.floor(index / 2);
      out.push({ level, index, hash: cur });
    }
    this.edge[level] = cur;
    this.n++;
    return out;
  }

  root(): Buffer {
    let r: Buffer | undefined;
    for (let level = 0; level < this.edge.length; level++) {
      const h = this.edge[level];
      if (h) r = r ? nodeHash(h, r) : h;
    }
    return r ?? EMPTY_ROOT;
  }
}

/** In-memory RFC 6962 tree keeping every perfect subtree, for tests and as the bench baseline. */
export class MerkleTree implements NodeSource {
  private levels: Buffer[][] = [];
  private frontier = new Frontier();

  constructor(entries: Iterable<Uint8Array> = []) {
    for (const e of entries) this.append(e);
  }

  static fromLeafHashes(leaves: Iterable<Buffer>): MerkleTree {
    const t = new MerkleTree();
    for (const h of leaves) t.appendLeafHash(h);
    return t;
  }

  get size(): number {
    return this.frontier.size;
  }

  /** Appends an entry; returns its index. */
  append(entryBytes: Uint8Array): number {
    return this.appendLeafHash(leafHash(entryBytes));
  }

  appendLeafHash(leaf: Buffer): number {
    const index = this.size;
    for (const n of this.frontier.append(leaf)) (this.levels[n.level] ??= [])[n.index] = n.hash;
    return index;
  }

  node(level: number, index: number): Buffer {
    const h = this.levels[level]?.[index];
    if (!h) throw new CtError('USAGE', `no complete subtree at level ${level}, index ${index}`, { level, index });
    return h;
  }

  leaf(index: number): Buffer {
    return this.node(0, index);
  }

  /** Root of the whole tree, or of its first `treeSize` leaves. */
  root(treeSize = this.size): Buffer {
    return treeSize === this.size ? this.frontier.root() : rootAt(this, treeSize);
  }

  inclusionProof(index: number, treeSize = this.size): Buffer[] {
    return inclusionProof(this, index, treeSize);
  }

  consistencyProof(size1: number, size2 = this.size): Buffer[] {
    return consistencyProof(this, size1, size2);
  }
}
