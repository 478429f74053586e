import { lstat, open, readdir, readlink, realpath, stat, type FileHandle } from 'node:fs/promises';
import { constants, readlinkSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { CtError, asIoError } from '../../core/errors.js';
import { compareNames } from '../names.js';
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
  /** A walked file: what lstat found (device, inode), which the handle it is read from must be. */
  dev?: number;
  ino?: number;
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

async function walk(root: string, exclude: Set<string>, excludeNames: ReadonlySet<string>): Promise<TreeEntry[]> {
  const out: TreeEntry[] = [];
  const visit = async (rel: string): Promise<void> => {
    const dir = rel ? join(root, rel) : root;
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (e) {
      throw asIoError(e, dir);
    }
    for (const n of names) {
      const r = rel ? `${rel}/${n}` : n;
      if (exclude.has(r) || excludeNames.has(n)) continue;
      const abs = join(root, r);
      let st;
      try {
        st = await lstat(abs);
      } catch (e) {
        throw asIoError(e, abs);
      }
      if (st.isDirectory()) {
        out.push({ name: `${r}/`, abs, kind: 'dir', size: 0, mode: 0o755 });
        await visit(r);
      } else if (st.isFile()) {
        out.push({ name: r, abs, kind: 'file', size: st.size, mode: st.mode & 0o111 ? 0o755 : 0o644, dev: st.dev, ino: st.ino });
      } else if (st.isSymbolicLink()) {
        out.push({ name: r, abs, kind: 'symlink', size: 0, mode: 0o777 });
      } else {
        throw new CtError('IO_ERROR', `${abs}: not a file, directory or symlink; cannot be packed`, { path: abs });
      }
    }
  };
  await visit('');
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
async function withIncludes(entries: TreeEntry[], includes: { from: string; to: string }[], packed: string, includeRoots: readonly string[]): Promise<TreeEntry[]> {
  const names = new Map(entries.map((e) => [e.name, e]));
  if (includes.length === 0) return entries;
  const own = [...(await realRoots([packed])), ...(await commandLineRoots(includeRoots))];
  const system = await realRoots(SYSTEM_INCLUDE_ROOTS);
  const opened: FileHandle[] = [];
  try {
    for (const inc of includes) {
      let fh: FileHandle;
      try {
        // O_NONBLOCK: a FIFO named here must not hang the pack before it is refused as not a file.
        fh = await open(inc.from, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
      } catch (e) {
        const io = asIoError(e, inc.from);
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
 * directories for a link (a review packed a secret so). Elsewhere (not Linux) the name's real
 * path, checked against the handle by the caller: only the last component is safe from a swap
 * there, so packing over directories other users can write is not safe on those systems.
 */
async function openedPath(fh: FileHandle, from: string, what: string): Promise<string> {
  // Sync: the kernel answers from the open file (procfs, no disk), faster than a trip to the
  // thread pool, which a pack of many small files would take once per file.
  let viaProc: string | undefined;
  try {
    viaProc = readlinkSync(`/proc/self/fd/${fh.fd}`);
  } catch {
    viaProc = undefined;
  }
  if (viaProc !== undefined && viaProc.startsWith('/')) return viaProc;
  if (process.platform === 'linux') throw new CtError('USAGE', `${what}: /proc/self/fd is not readable here (is /proc mounted?): ct pack needs it to know which file it opened`, { path: from });
  return realpath(from).catch((e: unknown) => {
    throw asIoError(e, from);
  });
}

/**
 * Opens a file the walk found, once, and makes sure the handle is that file before it is read:
 * not followed if it is a link now (O_NOFOLLOW), not a FIFO swapped in (O_NONBLOCK, then fstat),
 * the device, inode and size lstat saw, and the kernel's name for the handle (openedPath) the
 * path under the packed directory's real path. O_NOFOLLOW guards only the last component: a
 * directory of the path swapped for a link (by another user who may write the packed directory,
 * under a pack run as root or by CI) led the old read by path to another file of the same size,
 * packed in its place; swapped before the walk's lstat, even the inode matches, so only the
 * kernel's name tells. On Linux without /proc the pack is refused as an [[include]] is: a check of
 * each directory's device and inode after the open can be raced by swapping the link back.
 */
async function openWalkedFile(e: TreeEntry, realRoot: string): Promise<FileHandle> {
  const changed = (why: string, extra: Record<string, unknown> = {}) => new CtError('IO_ERROR', `${e.abs}: ${why} while the directory was being packed; nothing was packed (was the directory changed by someone else?)`, { path: e.abs, ...extra });
  let fh: FileHandle;
  try {
    fh = await open(e.abs, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw changed('replaced by a symbolic link');
    throw asIoError(err, e.abs);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.dev !== e.dev || st.ino !== e.ino) throw changed('replaced by another file');
    if (st.size !== e.size) throw changed('changed size');
    const opened = await openedPath(fh, e.abs, `ct pack ${e.abs}`);
    const expected = join(realRoot, e.name);
    if (opened !== expected) throw changed(`opened as ${opened}, outside its place in the packed directory (${expected}): one of its directories was relinked`, { opened, expected });
    return fh;
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
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
 * Builds the one layer of an image from a directory tree, deterministically: entries sorted
 * bytewise, names relative without `./`, uid/gid 0, no user names, mtime fixed, modes 0755 for
 * directories and executables and 0644 otherwise, symlinks kept as symlinks. The tar is gzipped
 * (fixed header) and both digests are computed as the bytes are written, in one pass.
 */
export async function buildDirLayer(
  root: string, blobPath: string,
  opts: { mtime: number; exclude?: string[]; excludeNames?: readonly string[]; gzip?: boolean; include?: { from: string; to: string }[]; includeRoots?: readonly string[] },
): Promise<BuiltLayer> {
  // The real path the walked files must still be under when they are opened (openWalkedFile).
  const realRoot = await realpath(root).catch((e: unknown) => {
    throw asIoError(e, root);
  });
  const entries = (await withIncludes(await walk(root, new Set(opts.exclude ?? []), new Set(opts.excludeNames ?? [])), opts.include ?? [], root, opts.includeRoots ?? [])).sort((a, b) => compareNames(a.name, b.name));
  // A scratch file copied into the bundle right after: no fsync needed.
  const sink = new HashingFileSink(blobPath, { gzip: opts.gzip ?? true, durable: false });
  const mtime = opts.mtime;
  try {
    for (const e of entries) {
      if (e.kind === 'dir') {
        await sink.write(encodeHeader({ name: e.name, type: 'Directory', size: 0, mode: e.mode, mtime }));
      } else if (e.kind === 'symlink') {
        let target: string;
        try {
          target = await readlink(e.abs);
        } catch (err) {
          throw asIoError(err, e.abs);
        }
        await sink.write(encodeHeader({ name: e.name, type: 'SymbolicLink', size: 0, mode: e.mode, mtime, linkpath: target }));
      } else {
        // A walked file is opened here, one at a time (a tree's thousands of files are not held
        // open at once), and read only from the handle; an [[include]]'s was opened when checked.
        e.handle ??= await openWalkedFile(e, realRoot);
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
    await closeHandles(entries);
  }
  const r = await sink.commit();
  return { path: blobPath, digest: r.digest, size: r.size, diffId: r.uncompressedDigest };
}
