import { lstat, open, readdir, readlink, realpath, stat, type FileHandle } from 'node:fs/promises';
import { constants } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { CtError, asIoError } from '../../core/errors.js';
import { tempTargetName } from '../../core/fs.js';
import { LAYER_LIMITS } from '../limits.js';
import { compareNames } from '../names.js';
import type { PackInclude } from './inputs.js';
import { kernelPath, openChildDir, openChildFile, pinnedIoError, type PinnedDir } from './pinned-dir.js';
import { HashingFileSink } from '../sink.js';
import { END_OF_ARCHIVE, encodeHeader, padding } from '../tar-write.js';

interface TreeEntry {
  name: string;
  abs: string;
  kind: 'dir' | 'file' | 'symlink';
  size: number;
  mode: number;
  /** An `[[include]]`'s file, opened when it was checked: read from here, never by path again. */
  handle?: FileHandle;
  /** A walked file or directory: what lstat found (device, inode), which its handle must be. */
  dev?: number;
  ino?: number;
  /** A walked symlink's target, read when it was listed. */
  linkpath?: string;
}

export interface BuiltLayer {
  path: string;
  /** `sha256:` of the compressed blob, its size, and the diff_id (digest of the uncompressed tar). */
  digest: string;
  size: number;
  diffId: string;
}

/** Files up to this size are read whole (one syscall round trip); larger ones are streamed. */
const READ_WHOLE_BYTES = 4 * 1024 * 1024;

/**
 * Version-control metadata, left out of a directory's layer wherever it is: a CI checkout's
 * `.git/config` holds the job's token (actions/checkout's `extraheader`) and `.git` the whole
 * history, which an image published from the checkout's root would carry to anyone who pulls it.
 */
export const VCS_METADATA: readonly string[] = ['.git', '.hg', '.svn'];

/** The name ct pack's scratch directory starts with; mkdtemp adds six letters and digits. */
export const SCRATCH_PREFIX = '.ct-pack-';
const SCRATCH_NAME = /^\.ct-pack-[A-Za-z0-9]{6}$/;

/**
 * What a ct command killed outright (SIGKILL, a crash: nothing ran to remove it) left in DIR, found
 * by name anywhere in it: ct pack's scratch directory, a copy of DIR's files (some since deleted, a
 * secret) and a partial output, and the temporary of a `.ctp` being written (pack, fetch, sign).
 * Packed, they shipped in the image. Refused rather than skipped: a user's own file of that name
 * cannot be told from a leftover, and packing or dropping it silently are both wrong.
 */
function refuseLeftover(n: string, st: { isDirectory(): boolean; isFile(): boolean }, abs: string): void {
  const scratch = st.isDirectory() && SCRATCH_NAME.test(n);
  if (!scratch && !(st.isFile() && tempTargetName(n)?.endsWith('.ctp'))) return;
  throw new CtError('USAGE', `${abs}: ${scratch ? "ct pack's scratch directory" : "the temporary of a .ctp being written"}, left by a ct command that was killed, lies in the directory being packed; remove it and pack again`, { path: abs });
}

/** How many entries, and how long a name, a packed directory may have: what a host applies (LAYER_LIMITS). */
const MAX_ENTRIES = LAYER_LIMITS.maxEntries;
const MAX_NAME_BYTES = LAYER_LIMITS.maxNameBytes;
/**
 * How deep directories may nest: the walk holds a handle a level, and this keeps them (with the
 * process's own) under the common 1024 open-file limit. Names alone (MAX_NAME_BYTES) allow 2048.
 */
const MAX_DEPTH = 512;

/**
 * `raw` as a string, refused unless it is UTF-8 (a layer's names are: PAX records and every host
 * read them so): decoded lossily it named another file or none. `where`: the directory (or link).
 */
function utf8Name(raw: Buffer, where: string, what = 'a name in it'): string {
  const s = raw.toString('utf8');
  if (!Buffer.from(s, 'utf8').equals(raw)) {
    throw new CtError('IO_ERROR', `${where}: ${what} is not UTF-8 (${JSON.stringify(s.slice(0, 200))}); rename it to pack this directory`, { path: where, reason: 'name-not-utf8' });
  }
  return s;
}

/**
 * The tree under the pinned root, each directory listed through a handle opened on it through its
 * parent's (pinned-dir.ts), so a directory renamed for a link while the pack runs is refused, not
 * followed: before, its target's names and link targets were listed (a root-only directory's, or
 * the whole filesystem's for a link to /). One handle a level is open at a time, at most
 * MAX_DEPTH; entries and names are bounded as a host's layer limits bound them. `shownRoot` names paths in messages.
 */
async function walk(root: PinnedDir, shownRoot: string, exclude: Set<string>, excludeNames: ReadonlySet<string>, skip: ReadonlySet<string>): Promise<TreeEntry[]> {
  const out: TreeEntry[] = [];
  const visit = async (dir: PinnedDir, rel: string, depth: number): Promise<void> => {
    let names: Buffer[];
    try {
      // As bytes: a name that is not UTF-8 decoded to U+FFFD was then not found (ENOENT), or, next
      // to its look-alike, packed that one twice (a duplicate entry a host refuses).
      names = await readdir(dir.at, { encoding: 'buffer' });
    } catch (e) {
      throw pinnedIoError(e, rel ? join(shownRoot, rel) : shownRoot);
    }
    for (const raw of names) {
      const n = utf8Name(raw, rel ? join(shownRoot, rel) : shownRoot);
      const r = rel ? `${rel}/${n}` : n;
      if (exclude.has(r) || excludeNames.has(n)) continue;
      const abs = join(shownRoot, r);
      if (Buffer.byteLength(r) >= MAX_NAME_BYTES) throw new CtError('TAR_LIMIT_EXCEEDED', `${abs}: ${MAX_NAME_BYTES} bytes or more of path under the packed directory, more than a host applies (a directory's name in the layer ends in /)`, { path: abs, limit: 'maxNameBytes' });
      const at = `${dir.at}/${n}`;
      let st;
      try {
        st = await lstat(at);
      } catch (e) {
        throw pinnedIoError(e, abs);
      }
      // ct pack's own scratch directory and output, when --out is inside DIR: by device and inode,
      // as a name in DIR could be anything's. Packed, a second run packed the first one's .ctp.
      if (skip.has(`${st.dev}:${st.ino}`)) continue;
      refuseLeftover(n, st, abs);
      if (out.length >= MAX_ENTRIES) throw new CtError('TAR_LIMIT_EXCEEDED', `${shownRoot}: more than ${MAX_ENTRIES} entries, more than a host applies`, { path: shownRoot, limit: 'maxEntries' });
      if (st.isDirectory()) {
        out.push({ name: `${r}/`, abs, kind: 'dir', size: 0, mode: 0o755, dev: st.dev, ino: st.ino });
        if (depth >= MAX_DEPTH) throw new CtError('TAR_LIMIT_EXCEEDED', `${abs}: directories nested more than ${MAX_DEPTH} deep under the packed directory`, { path: abs, limit: 'depth' });
        const child = await openChildDir(dir, n, st, abs);
        try {
          await visit(child, r, depth + 1);
        } finally {
          await child.fh.close().catch(() => undefined);
        }
      } else if (st.isFile()) {
        out.push({ name: r, abs, kind: 'file', size: st.size, mode: st.mode & 0o111 ? 0o755 : 0o644, dev: st.dev, ino: st.ino });
      } else if (st.isSymbolicLink()) {
        let target: string;
        try {
          // Not followed: readlink reads the last component itself, here in the held directory.
          target = utf8Name(await readlink(at, { encoding: 'buffer' }), abs, 'its link target');
        } catch (e) {
          throw pinnedIoError(e, abs);
        }
        out.push({ name: r, abs, kind: 'symlink', size: 0, mode: 0o777, linkpath: target });
      } else {
        throw new CtError('IO_ERROR', `${abs}: not a file, directory or symlink; cannot be packed`, { path: abs });
      }
    }
  };
  await visit(root, '', 0);
  return out;
}

/**
 * Where an `[[include]]` may copy from, besides the directory being packed: the system's program
 * and library directories, whose files come from the distribution's packages (busybox-static's
 * /bin/busybox). A ct.toml comes from the repository being built, which in CI may be a pull
 * request's: left free, `from = "/proc/self/environ"` or `~/.docker/config.json` packed the job's
 * credentials into an image pushed for anyone to pull. Docker's build context forbids the same.
 * Other directories only when the command line names them (`ct pack --include-from DIR`).
 */
export const SYSTEM_INCLUDE_ROOTS = ['/bin', '/sbin', '/lib', '/lib64', '/usr/bin', '/usr/sbin', '/usr/lib', '/usr/lib64', '/usr/libexec', '/usr/share'];

/** Each root as its real path (merged-/usr systems link /bin to /usr/bin); missing ones left out. */
async function realRoots(paths: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    const r = await realpath(p).catch(() => undefined);
    if (r) out.push(r);
  }
  return out;
}

/** `--include-from` directories as real paths; one that does not exist is a mistake to say, not skip. */
async function commandLineRoots(paths: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    const st = await stat(p).catch(() => undefined);
    if (!st?.isDirectory()) throw new CtError('USAGE', `--include-from ${p}: not a directory`, { path: p });
    out.push(await realpath(p));
  }
  return out;
}

const under = (path: string, root: string) => path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);

/** Whether every other user could read `real`: the file readable by others, each directory above it up to `root` searchable by them. */
async function worldReadable(real: string, mode: number, root: string): Promise<boolean> {
  if ((mode & 0o004) === 0) return false;
  for (let d = dirname(real); under(d, root); d = dirname(d)) {
    const st = await stat(d).catch(() => undefined);
    if (!st || (st.mode & 0o001) === 0) return false;
    if (d === root) break;
  }
  return true;
}

/**
 * `[[include]]` host files added to the tree (a static binary the directory does not hold, e.g.
 * busybox-static's /bin/busybox), with their parent directories. A path the directory already has
 * is a conflict, not an override. `from` must be inside the packed directory, a system directory
 * (SYSTEM_INCLUDE_ROOTS; files every user can read) or a directory of `includeRoots`.
 * Each file is opened once, links followed, and checked on that handle: the file read into the
 * layer is the one whose real path was checked (its device and inode are compared), whatever is
 * renamed or relinked in between (a pack run as root over a directory another user can write).
 * The caller closes the handles (closeHandles).
 */
async function withIncludes(entries: TreeEntry[], includes: PackInclude[], packed: string | undefined, includeRoots: readonly string[]): Promise<TreeEntry[]> {
  const names = new Map(entries.map((e) => [e.name, e]));
  if (includes.length === 0) return entries;
  const own = [...(packed === undefined ? [] : [packed]), ...(await commandLineRoots(includeRoots))];
  const system = await realRoots(SYSTEM_INCLUDE_ROOTS);
  const opened: FileHandle[] = [];
  try {
    for (const inc of includes) {
      let fh: FileHandle;
      try {
        // O_NONBLOCK: a FIFO named here must not hang the pack before it is refused as not a file.
        // `at`: a relative `from`, opened through the packed directory's handle, not its name.
        fh = await open(inc.at ?? inc.from, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
      } catch (e) {
        const io = inc.at === undefined ? asIoError(e, inc.from) : pinnedIoError(e, inc.from);
        throw new CtError('IO_ERROR', `ct.toml [[include]] ${inc.to}: ${io.message}`, io.details, { cause: e });
      }
      opened.push(fh);
      const st = await fh.stat();
      if (!st.isFile()) throw new CtError('USAGE', `ct.toml [[include]] ${inc.to}: ${inc.from} is not a regular file`, { path: inc.from });
      const real = await openedPath(fh, inc.from, `ct.toml [[include]] ${inc.from}`);
      // lstat, not stat: a link put at `real` since (a swap to a link to another file, the one the
      // handle holds) is itself what is found, and refused. stat followed it, found the handle's
      // file, and checked the name of a harmless one.
      const now = await lstat(real).catch(() => undefined);
      if (!now || !now.isFile() || now.dev !== st.dev || now.ino !== st.ino) throw new CtError('USAGE', `ct.toml [[include]] ${inc.to}: ${inc.from} changed while it was being checked`, { path: inc.from });
      // Not from version-control metadata, however named (links followed): the walk leaves it out
      // because a checkout's .git/config holds the CI job's token; an include must not put it back.
      if (real.split(sep).some((part) => VCS_METADATA.includes(part))) {
        throw new CtError('USAGE', `ct.toml [[include]] ${inc.to}: ${inc.from} is in version-control metadata (${real}), which is never packed: it can hold credentials`, { path: inc.from });
      }
      const sysRoot = system.find((r) => under(real, r));
      const allowed = own.some((r) => under(real, r)) || (sysRoot !== undefined && (await worldReadable(real, st.mode, sysRoot)));
      if (!allowed) {
        throw new CtError('USAGE', `ct.toml [[include]] ${inc.to}: ${inc.from} (${real}) is outside the packed directory and the system's program directories (/usr/bin, /usr/lib, …, files every user can read): a ct.toml must not copy this machine's other files (a CI job's credentials) into the image; name its directory with ct pack --include-from DIR (the action's include-from input) if it should`, { path: inc.from, real });
      }
      if (names.has(inc.to) || names.has(`${inc.to}/`)) throw new CtError('USAGE', `ct.toml [[include]] ${inc.to}: the directory already has that path`, { path: inc.to });
      const parts = inc.to.split('/');
      for (let i = 1; i < parts.length; i++) {
        const dir = `${parts.slice(0, i).join('/')}/`;
        const have = names.get(dir) ?? names.get(dir.slice(0, -1));
        if (have && have.kind !== 'dir') throw new CtError('USAGE', `ct.toml [[include]] ${inc.to}: ${dir.slice(0, -1)} is not a directory`, { path: inc.to });
        if (!have) names.set(dir, { name: dir, abs: '', kind: 'dir', size: 0, mode: 0o755 });
      }
      names.set(inc.to, { name: inc.to, abs: real, kind: 'file', size: st.size, mode: st.mode & 0o111 ? 0o755 : 0o644, handle: fh });
    }
  } catch (e) {
    await Promise.all(opened.map((h) => h.close().catch(() => undefined)));
    throw e;
  }
  return [...names.values()];
}

/**
 * Where the opened file is: the kernel's name for the handle (/proc/self/fd), so the path judged
 * is the file's that was opened, not what the name leads to a moment later. On Linux without /proc
 * (a sandbox) the pack is refused: the name's real path can be raced by swapping one of its
 * directories for a link (a review packed a secret so). A real path longer than the kernel names
 * (PATH_MAX) is IO_ERROR. Elsewhere (not Linux) the name's real path, checked against the handle
 * by the caller: only the last component is safe from a swap there.
 */
async function openedPath(fh: FileHandle, from: string, what: string): Promise<string> {
  const viaProc = kernelPath(fh, what, from);
  if (viaProc !== undefined) return viaProc;
  if (process.platform === 'linux') throw new CtError('IO_ERROR', `${what}: its real path is longer than the 4096 bytes the kernel names (PATH_MAX), so where it lies cannot be checked`, { path: from, errno: 'ENAMETOOLONG' });
  return realpath(from).catch((e: unknown) => {
    throw asIoError(e, from);
  });
}

/**
 * The file's `size` bytes, read from the handle into one buffer of the size known already: no
 * second fstat and no growing buffer as FileHandle.readFile has (a pack of many small files spends
 * its time in such calls). One byte more is asked for, and the end of the file awaited, so a file
 * that grew is refused, not cut.
 */
async function readWhole(fh: FileHandle, size: number, path: string): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(size + 1);
  let n = 0;
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
      if (bytesRead === 0 || (n += bytesRead) === buf.length) break;
    }
  } catch (err) {
    throw asIoError(err, path);
  }
  if (n !== size) throw new CtError('IO_ERROR', `${path}: changed size while being packed`, { path });
  return buf.subarray(0, size);
}

async function closeHandles(entries: TreeEntry[]): Promise<void> {
  await Promise.all(entries.map((e) => e.handle?.close().catch(() => undefined)));
}

/**
 * The handles of the directories above the file being written, opened again through each other
 * from the pinned root as the sorted entries go by (a directory's entries are contiguous, so one
 * handle a level is open), each checked to be the directory the walk listed (device, inode).
 */
class DirStack {
  private readonly stack: { rel: string; dir: PinnedDir }[];
  constructor(root: PinnedDir, private readonly dirs: ReadonlyMap<string, TreeEntry>) {
    this.stack = [{ rel: '', dir: root }];
  }

  /** The open directory holding `name` (a walked file's relative path). */
  async parentOf(name: string): Promise<PinnedDir> {
    const parentRel = name.slice(0, name.lastIndexOf('/') + 1);
    while (!parentRel.startsWith(this.top.rel)) await this.stack.pop()!.dir.fh.close().catch(() => undefined);
    while (this.top.rel !== parentRel) {
      const rel = parentRel.slice(0, parentRel.indexOf('/', this.top.rel.length) + 1);
      const seen = this.dirs.get(rel);
      if (seen?.dev === undefined || seen.ino === undefined) throw new CtError('IO_ERROR', `${rel}: not a directory the walk listed`, { path: rel });
      const dir = await openChildDir(this.top.dir, rel.slice(this.top.rel.length, -1), { dev: seen.dev, ino: seen.ino }, seen.abs);
      this.stack.push({ rel, dir });
    }
    return this.top.dir;
  }

  private get top(): { rel: string; dir: PinnedDir } {
    return this.stack[this.stack.length - 1]!;
  }

  /** Closes what it opened (not the root, which is the caller's). */
  async close(): Promise<void> {
    while (this.stack.length > 1) await this.stack.pop()!.dir.fh.close().catch(() => undefined);
  }
}

/**
 * Builds the one layer of an image from a directory tree, deterministically: entries sorted
 * bytewise, names relative without `./`, uid/gid 0, no user names, mtime fixed, modes 0755 for
 * directories and executables and 0644 otherwise, symlinks kept as symlinks. The tar is gzipped
 * (fixed header) and both digests are computed as the bytes are written, in one pass.
 * `skip`: files and directories (device, inode) never packed, wherever they are (ct pack's own
 * scratch directory and output). `root` is the directory pinned by the caller (pinRoot), which closes it; `realRoot` its real
 * path when it was opened (undefined past PATH_MAX), what an `[[include]]` in it is judged against
 * where /proc cannot say where the handle is now; `shownRoot` the
 * name the user gave, for messages.
 */
export async function buildDirLayer(
  root: PinnedDir, realRoot: string | undefined, shownRoot: string, blobPath: string,
  opts: { mtime: number; exclude?: string[]; excludeNames?: readonly string[]; skip?: readonly { dev: number; ino: number }[]; gzip?: boolean; include?: PackInclude[]; includeRoots?: readonly string[]; temps?: Set<string> },
): Promise<BuiltLayer> {
  const skip = new Set((opts.skip ?? []).map((f) => `${f.dev}:${f.ino}`));
  const walked = await walk(root, shownRoot, new Set(opts.exclude ?? []), new Set(opts.excludeNames ?? []), skip);
  const dirs = new Map(walked.filter((e) => e.kind === 'dir').map((e) => [e.name, e]));
  // An include inside DIR is judged against where the held directory is now (the kernel's name for
  // its handle): the file a relative `from` opened through it is there, wherever DIR's name leads.
  const packedReal = opts.include?.length && process.platform === 'linux' ? kernelPath(root.fh, `ct pack ${shownRoot}`, shownRoot) : realRoot;
  const entries = (await withIncludes(walked, opts.include ?? [], packedReal, opts.includeRoots ?? [])).sort((a, b) => compareNames(a.name, b.name));
  // Again with the includes and the parent directories they add: the walk alone stops at the limit.
  if (entries.length > MAX_ENTRIES) {
    await closeHandles(entries);
    throw new CtError('TAR_LIMIT_EXCEEDED', `${shownRoot}: more than ${MAX_ENTRIES} entries with its [[include]] files and their directories, more than a host applies`, { path: shownRoot, limit: 'maxEntries' });
  }
  // A scratch file copied into the bundle right after: no fsync needed.
  const sink = new HashingFileSink(blobPath, { gzip: opts.gzip ?? true, durable: false, temps: opts.temps });
  const mtime = opts.mtime;
  const held = new DirStack(root, dirs);
  try {
    for (const e of entries) {
      if (e.kind === 'dir') {
        await sink.write(encodeHeader({ name: e.name, type: 'Directory', size: 0, mode: e.mode, mtime }));
      } else if (e.kind === 'symlink') {
        await sink.write(encodeHeader({ name: e.name, type: 'SymbolicLink', size: 0, mode: e.mode, mtime, linkpath: e.linkpath ?? '' }));
      } else {
        // A walked file is opened here, one at a time (a tree's thousands of files are not held
        // open at once), through its directory's handle, and read only from its own handle; an
        // [[include]]'s was opened when checked.
        e.handle ??= await openChildFile(await held.parentOf(e.name), e.name.slice(e.name.lastIndexOf('/') + 1), { dev: e.dev!, ino: e.ino!, size: e.size }, e.abs);
        await sink.write(encodeHeader({ name: e.name, type: 'File', size: e.size, mode: e.mode, mtime }));
        if (e.size <= READ_WHOLE_BYTES) {
          await sink.write(await readWhole(e.handle, e.size, e.abs));
        } else {
          const stream = e.handle.createReadStream({ start: 0, highWaterMark: 1 << 20, autoClose: false });
          await sink.copyFrom(stream, e.abs, { size: e.size });
        }
        await sink.write(padding(e.size));
        await e.handle.close();
        e.handle = undefined;
      }
    }
    await sink.write(END_OF_ARCHIVE);
  } catch (err) {
    await sink.abort();
    throw err;
  } finally {
    await held.close();
    await closeHandles(entries);
  }
  const r = await sink.commit();
  return { path: blobPath, digest: r.digest, size: r.size, diffId: r.uncompressedDigest };
}
