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

/** False when it stopped at `max` changes. */
async function diffInto(reader: GitObjectReader, a: string | undefined, b: string | undefined, prefix: string, out: FileChange[], max: number): Promise<boolean> {
  if (a === b) return true;
  const before = new Map((a ? ((await reader.tree(a)) ?? []) : []).map((e) => [e.name, e]));
  const afterBy = new Map((b ? ((await reader.tree(b)) ?? []) : []).map((e) => [e.name, e]));
  for (const name of new Set([...afterBy.keys(), ...before.keys()])) {
    const x = before.get(name);
    const y = afterBy.get(name);
    const path = prefix + name;
    if ((isDir(x) || isDir(y)) && !(await diffInto(reader, isDir(x) ? x!.oid : undefined, isDir(y) ? y!.oid : undefined, `${path}/`, out, max))) return false;
    const xo = isFile(x) ? x!.oid : undefined;
    const yo = isFile(y) ? y!.oid : undefined;
    if (xo !== yo) out.push({ path, name, ...(xo ? { before: xo } : {}), ...(yo ? { after: yo } : {}) });
    if (out.length > max) return false;
  }
  return true;
}
