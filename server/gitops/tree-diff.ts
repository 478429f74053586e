import type { GitObjectReader, TreeEntry } from './object-reader.js';

/** A regular file that differs between two trees: its path under them, its name, its blob ids (absent: no such file). */
export interface FileChange {
  path: string;
  name: string;
  before?: string;
  after?: string;
}

const isFile = (e: TreeEntry | undefined) => e?.mode === '100644' || e?.mode === '100755';
const isDir = (e: TreeEntry | undefined) => e?.mode === '40000';

/**
 * The regular files that differ between trees `a` and `b` (either absent: empty), recursively.
 * Subtrees with the same id are skipped unread: a commit that changes one file of thousands reads
 * the trees on that file's path, not the others (#14 target 7). null when more than `max` files
 * differ (the walk stops there: the caller reads the commit whole, and refuses it as that read does).
 */
export async function diffTrees(reader: GitObjectReader, a: string | undefined, b: string | undefined, max: number): Promise<FileChange[] | null> {
  const out: FileChange[] = [];
  return (await diffInto(reader, a, b, '', out, max)) ? out : null;
}

/** False when it stopped at `max` changes, or at a tree the whole read must judge. */
async function diffInto(reader: GitObjectReader, a: string | undefined, b: string | undefined, prefix: string, out: FileChange[], max: number): Promise<boolean> {
  if (a === b) return true;
  const before = a ? await entriesOf(reader, a) : EMPTY;
  const after = b ? await entriesOf(reader, b) : EMPTY;
  // Two entries whose names read alike: stop, and the commit is read whole (which refuses it).
  if (!before || !after) return false;
  for (const [name, y] of after) if (!(await diffEntry(reader, name, before.get(name), y, prefix, out, max))) return false;
  for (const [name, x] of before) if (!after.has(name) && !(await diffEntry(reader, name, x, undefined, prefix, out, max))) return false;
  return true;
}

async function diffEntry(reader: GitObjectReader, name: string, x: TreeEntry | undefined, y: TreeEntry | undefined, prefix: string, out: FileChange[], max: number): Promise<boolean> {
  const path = prefix + name;
  if ((isDir(x) || isDir(y)) && !(await diffInto(reader, isDir(x) ? x!.oid : undefined, isDir(y) ? y!.oid : undefined, `${path}/`, out, max))) return false;
  const xo = isFile(x) ? x!.oid : undefined;
  const yo = isFile(y) ? y!.oid : undefined;
  if (xo !== yo) out.push({ path, name, ...(xo ? { before: xo } : {}), ...(yo ? { after: yo } : {}) });
  return out.length <= max;
}

const EMPTY: ReadonlyMap<string, TreeEntry> = new Map();
/** Entries remembered across diffs (a tree read now is the next commit's old tree): two states' worth of a large directory. */
const MAX_REMEMBERED_ENTRIES = 200_000;
const remembered = new WeakMap<GitObjectReader, { trees: Map<string, ReadonlyMap<string, TreeEntry>>; entries: number }>();

/**
 * A tree's entries by name, remembered by the tree's id (its content never changes), the oldest
 * dropped first. undefined when two names read alike (bytes that are not UTF-8 decode to the same
 * text): a map by name would keep one of them and miss changes to the other.
 */
async function entriesOf(reader: GitObjectReader, oid: string): Promise<ReadonlyMap<string, TreeEntry> | undefined> {
  let cache = remembered.get(reader);
  if (!cache) remembered.set(reader, (cache = { trees: new Map(), entries: 0 }));
  const hit = cache.trees.get(oid);
  if (hit) return hit;
  const list = (await reader.tree(oid)) ?? [];
  const entries = new Map(list.map((e) => [e.name, e]));
  if (entries.size !== list.length) return undefined;
  cache.trees.set(oid, entries);
  cache.entries += entries.size;
  while (cache.entries > MAX_REMEMBERED_ENTRIES && cache.trees.size > 1) {
    const [oldest, list] = cache.trees.entries().next().value as [string, ReadonlyMap<string, TreeEntry>];
    cache.trees.delete(oldest);
    cache.entries -= list.size;
  }
  return entries;
}
