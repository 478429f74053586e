import { open, type FileHandle } from 'node:fs/promises';
import { constants, readlinkSync } from 'node:fs';
import { CtError } from '../../core/errors.js';

/**
 * A directory of a `ct pack DIR` walk held open, and the path that reaches its entries through
 * that handle: `/proc/self/fd/N`, which the kernel resolves to the open directory itself, not to
 * whatever its name leads to now. Listing, lstat, readlink and open through it cannot be sent to
 * another directory by renaming the packed one, or one of its directories, for a link (a review
 * packed a root-only directory's files, names and link targets so). It needs no long path either:
 * a tree deeper than PATH_MAX is reached a handle at a time.
 */
export interface PinnedDir {
  fh: FileHandle;
  /** Prefix of its entries' paths: `/proc/self/fd/N` on Linux, the directory's name elsewhere. */
  at: string;
  dev: number;
  ino: number;
}

const FD_DIR = '/proc/self/fd';
/** Only Linux resolves a path through /proc/self/fd/N/name; elsewhere names are used (not race-safe). */
const viaProc = process.platform === 'linux';

/** `${shown}: <errno text>`, without the /proc/self/fd path Node puts in its messages. */
export function pinnedIoError(e: unknown, shown: string): CtError {
  if (e instanceof CtError) return e;
  const err = e as NodeJS.ErrnoException;
  const text = (err?.message ?? String(e)).replace(/, \w+ '.*'$/s, '');
  return new CtError('IO_ERROR', `${shown}: ${text}`, { path: shown, errno: err?.code }, { cause: e });
}

export function procMissing(what: string, shown: string): CtError {
  return new CtError('USAGE', `${what}: /proc/self/fd is not readable here (is /proc mounted?): ct pack needs it to know which file it opened`, { path: shown });
}

/**
 * The kernel's name for an open file (Linux: /proc/self/fd), or undefined when that name is
 * longer than the kernel gives out (PATH_MAX, 4096 bytes: ENAMETOOLONG). /proc is blamed only
 * when it is not there; on other systems undefined (the caller falls back to the name).
 */
export function kernelPath(fh: FileHandle, what: string, shown: string): string | undefined {
  if (!viaProc) return undefined;
  try {
    // Sync: procfs answers from the open file (no disk), faster than a trip to the thread pool.
    const p = readlinkSync(`${FD_DIR}/${fh.fd}`);
    if (p.startsWith('/')) return p;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENAMETOOLONG') return undefined;
  }
  throw procMissing(what, shown);
}

/**
 * Opens the directory `ct pack DIR` was given, once, links followed (the name is the operator's):
 * everything after (ct.toml, the walk, the [[include]] check) goes through this handle. `real` is
 * its real path, undefined when longer than PATH_MAX (nothing then is judged to be under it).
 */
export async function pinRoot(dir: string): Promise<{ root: PinnedDir; real: string | undefined }> {
  let fh: FileHandle;
  try {
    fh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') {
      throw new CtError('USAGE', `${dir} is not a directory: ct pack DIR packs a directory (its ct.toml gives the name, version and runtime); --oci-layout or --image-tar pack an image`, { path: dir });
    }
    throw pinnedIoError(e, dir);
  }
  try {
    const st = await fh.stat();
    const real = kernelPath(fh, `ct pack ${dir}`, dir);
    return { root: { fh, at: viaProc ? `${FD_DIR}/${fh.fd}` : dir, dev: st.dev, ino: st.ino }, real };
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw pinnedIoError(e, dir);
  }
}

/**
 * `details.changed` says what was found, a stable code: `kind` (a link, FIFO, device or other kind of file
 * where a directory or file was), `identity` (another directory or file: device, inode), `size`.
 */
type Change = 'kind' | 'identity' | 'size';
const changed = (shown: string, why: string, what: Change) => new CtError('IO_ERROR', `${shown}: ${why} while the directory was being packed; nothing was packed (was the directory changed by someone else?)`, { path: shown, changed: what });

/**
 * Opens `name` in an open directory, as the directory `seen` (the lstat the walk made through the
 * parent's handle): not followed if it is a link now (O_NOFOLLOW: ELOOP), and the same device and
 * inode. `shown` is its path under the name the user gave, for messages. The caller closes it.
 */
export async function openChildDir(parent: PinnedDir, name: string, seen: { dev: number; ino: number }, shown: string): Promise<PinnedDir> {
  let fh: FileHandle;
  try {
    fh = await open(`${parent.at}/${name}`, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'ENOTDIR') throw changed(shown, 'replaced by a symbolic link or a file', 'kind');
    throw pinnedIoError(e, shown);
  }
  try {
    const st = await fh.stat();
    if (st.dev !== seen.dev || st.ino !== seen.ino) throw changed(shown, 'replaced by another directory', 'identity');
    return { fh, at: viaProc ? `${FD_DIR}/${fh.fd}` : `${parent.at}/${name}`, dev: st.dev, ino: st.ino };
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw pinnedIoError(e, shown);
  }
}

/** A walked file, opened through its directory's handle: see openChildDir; `changed` for its refusals. */
export async function openChildFile(parent: PinnedDir, name: string, seen: { dev: number; ino: number; size: number }, shown: string): Promise<FileHandle> {
  let fh: FileHandle;
  try {
    // O_NONBLOCK: a FIFO swapped in is refused below, not waited on.
    fh = await open(`${parent.at}/${name}`, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') throw changed(shown, 'replaced by a symbolic link', 'kind');
    throw pinnedIoError(e, shown);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw changed(shown, 'replaced by a FIFO, device or directory', 'kind');
    if (st.dev !== seen.dev || st.ino !== seen.ino) throw changed(shown, 'replaced by another file', 'identity');
    // Checked here, before a byte is read: the read's own count (layer.ts) catches a later change.
    if (st.size !== seen.size) throw changed(shown, 'changed size', 'size');
    return fh;
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw pinnedIoError(e, shown);
  }
}
