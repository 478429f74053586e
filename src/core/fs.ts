import { link, lstat, mkdir, open, readdir, rename, rm, unlink } from 'node:fs/promises';
import { closeSync, constants, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { asIoError, CtError } from './errors.js';

export interface AtomicWriteOptions {
  /**
   * Also fsync the directory after the rename (and the parents of any directory the write had to
   * create). The file's fsync makes its bytes durable, not the directory entry naming them: after
   * a power loss the rename may be gone (the old file, or none, under the name). Opt-in, for the
   * records whose survival of a power loss the docs promise. Not the default: writeFileAtomic is
   * on hot paths (a host writes assigned/<id>.json and the container's config.json at every
   * deploy; it saved its generation with it at every assignment before generation-record.ts), where
   * a second disk flush per write costs measurable latency and CPU at fleet rates, and what those
   * writes guard against, a crash of the process, needs only the rename.
   */
  durable?: boolean;
  /**
   * false: never replace a file at `path` (one that appeared since the caller's
   * refuseExistingOutput looked, while the command ran): placeOutput's no-replace placing, IO_ERROR
   * `already exists`, nothing replaced and no temporary left. Default true (a rename).
   */
  replace?: boolean;
}

/**
 * Writes a file atomically: a temporary file in the same directory, fsync, then rename.
 * A crash or an error never leaves a half-written file under the final name. With `durable`, the
 * directory is fsynced too: once this resolves, the new content survives a power loss.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string, mode = 0o644, o: AtomicWriteOptions = {}): Promise<void> {
  const dir = dirname(path);
  const tmp = tempPathFor(path);
  try {
    // The directory is created only when it is missing: a recursive mkdir at every write was a
    // tenth of a simulated host's CPU per assignment in the fleet benchmark (the generation is
    // saved at each one), and the open says whether it is needed.
    const fh = await open(tmp, 'wx', mode).catch(async (e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
      await (o.durable ? mkdirDurable(dir) : mkdir(dir, { recursive: true }));
      return open(tmp, 'wx', mode);
    });
    try {
      // Plain writes (FileHandle.writeFile costs a third more CPU for the few bytes most callers write).
      const bytes = typeof data === 'string' ? Buffer.from(data) : data;
      for (let at = 0; at < bytes.length; ) {
        const { bytesWritten } = await fh.write(bytes, at, bytes.length - at);
        if (bytesWritten <= 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
        at += bytesWritten;
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
    await placeOutput(tmp, path, o.replace !== false);
  } catch (e) {
    // The clean-up's own failure (ENOTDIR under a parent that is a file) must not hide the cause.
    await rm(tmp, { force: true }).catch(() => undefined);
    throw asIoError(e, path);
  }
  if (o.durable) await syncRenamed(dir, path);
}

/**
 * The directory sync of a durable write, after its rename. A failure (EIO: the kernel could not
 * write the directory back) is an error, not a warning: the new content is visible under the name,
 * but whether it survives a power loss is unknown, which is exactly what the caller asked to know.
 * The file is left in place: the old content is gone already, so removing it would restore nothing.
 */
async function syncRenamed(dir: string, path: string): Promise<void> {
  try {
    await syncDirectory(dir);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new CtError('IO_ERROR', `${path}: written, but its directory could not be synced (${err?.message ?? String(e)}): whether it survives a power loss is unknown`, { path, errno: err?.code }, { cause: e });
  }
}

/**
 * Refuses to write over something already at `path` unless `force` (the user's --force): what
 * `ct keygen --out`, `ct trust-store init`, `ct pack`, `ct fetch` and `ct sign --out` check before
 * any work, so a typo in an output name does not silently replace a file. Anything at the name
 * counts, a dangling symbolic link too (the write would replace it). A directory is refused even
 * with --force (a file cannot be renamed over it: the work would all be done, then fail).
 * This check only saves the work: what appears at the name meanwhile is refused by placeOutput.
 */
export async function refuseExistingOutput(path: string, force: boolean | undefined): Promise<void> {
  const there = await lstat(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw asIoError(e, path);
  });
  if (there?.isDirectory()) throw new CtError('IO_ERROR', `${path}: is a directory; give the name of the file to write`, { path });
  if (there && !force) throw existingOutput(path);
}

function existingOutput(path: string): CtError {
  return new CtError('IO_ERROR', `${path}: already exists (use --force to replace it)`, { path });
}

/**
 * Puts a finished temporary (beside `path`, see tempPathFor) in place under `path`. `replace`
 * (--force): a rename, replacing whatever is at the name (a symbolic link there is replaced, not
 * followed). Otherwise with no-replace semantics: a hard link (which fails if anything, a dangling
 * link too, has appeared at the name since refuseExistingOutput looked) and then the temporary's
 * unlink; a file system without hard links is refused rather than risking a replace. IO_ERROR.
 */
export async function placeOutput(tmp: string, path: string, replace: boolean): Promise<void> {
  if (replace) {
    await rename(tmp, path).catch((e) => Promise.reject(asIoError(e, path)));
    return;
  }
  try {
    await link(tmp, path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw existingOutput(path);
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS') {
      throw new CtError('IO_ERROR', `${path}: this file system cannot create the file without risking replacing one that appears meanwhile (no hard links: ${code}); use --force to write it by rename`, { path, errno: code }, { cause: e });
    }
    throw asIoError(e, path);
  }
  // In place already: a temporary left by a failed unlink is a stale one (removeStaleTemps).
  await unlink(tmp).catch(() => undefined);
}

/** fsyncs a directory (opened read-only): what makes the names created, renamed or removed in it durable. */
export async function syncDirectory(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * `mkdir -p` whose new directories survive a power loss: the parent of each directory it created
 * is fsynced (a directory that was there already is left as it is). Errors are IO_ERROR.
 */
export async function mkdirDurable(dir: string, mode?: number): Promise<void> {
  try {
    // The first directory created, or undefined when `dir` existed: its parent and every created
    // directory above `dir` hold a new entry.
    const first = await mkdir(dir, { recursive: true, mode });
    if (first === undefined) return;
    const parents: string[] = [];
    for (let d = dirname(dir); ; d = dirname(d)) {
      parents.unshift(d);
      if (d === dirname(first) || d === dirname(d)) break;
    }
    for (const p of parents) await syncDirectory(p);
  } catch (e) {
    throw asIoError(e, dir);
  }
}

/** A temporary path beside `path`, for writers that stream and rename themselves. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
}

/**
 * The file name a tempPathFor temporary was made for (`.<name>.<12 hex>.tmp` → `<name>`), or
 * undefined for any other name: how clean-ups recognise what an interrupted writer left.
 */
export function tempTargetName(fileName: string): string | undefined {
  return /^\.(.+)\.[0-9a-f]{12}\.tmp$/.exec(fileName)?.[1];
}

/**
 * What a clean-up of temporaries may remove, chosen by where they lie (removeStaleTemps):
 * - `own-files`: regular files only (never a directory, never a symlink), owned by this process's
 *   user, unlinked one by one: nothing is traversed, so nothing swapped in by someone else who can
 *   write the directory (`ct fetch -o /tmp/x.ctp`) is followed. With `olderThanMs`, only those
 *   last modified longer ago than that: for places where another process may be writing one right
 *   now (ct fetch, src/oci/fetch-temps.ts).
 * - `private-trees`: whole directory trees, removed recursively, for a parent no other user can
 *   write (the unpacked root filesystems under the host agent's 0700 state directory). A recursive
 *   removal follows a directory swapped for a symlink between its checks, so it must never be
 *   pointed at a directory others can write.
 */
export type StaleTempRemoval = { kind: 'own-files'; olderThanMs?: number } | { kind: 'private-trees' };

/**
 * Removes the temporaries tempPathFor made beside `path` (`.<name>.<12 hex>.tmp`) that
 * interrupted writers left: never renamed into place, so never used. Each is tried on its own: one
 * that cannot be removed (EPERM, EIO) does not keep the rest; the first failure is thrown once all
 * have been tried.
 */
export async function removeStaleTemps(path: string, removal: StaleTempRemoval): Promise<void> {
  const name = basename(path);
  const parent = dirname(path);
  let failure: unknown;
  for (const n of await readdir(parent).catch(() => [] as string[])) {
    if (tempTargetName(n) !== name) continue;
    const temp = join(parent, n);
    try {
      if (removal.kind === 'private-trees') await rm(temp, { recursive: true, force: true });
      else if (await isOwnStaleFile(temp, removal.olderThanMs)) await unlink(temp);
    } catch (e) {
      // Gone meanwhile (its writer renamed or removed it): nothing to do.
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') failure ??= asIoError(e, temp);
    }
  }
  if (failure) throw failure;
}

/**
 * A regular file (lstat: a symlink is not one) of this user, older than `olderThanMs` when given.
 * Between this check and the unlink the name may be swapped for something else; unlink removes
 * only that name, whatever it then is (a directory fails with EISDIR), and never follows it.
 */
async function isOwnStaleFile(path: string, olderThanMs: number | undefined): Promise<boolean> {
  const st = await lstat(path);
  if (!st.isFile()) return false;
  if (process.getuid && st.uid !== process.getuid()) return false;
  return olderThanMs === undefined || Date.now() - st.mtimeMs >= olderThanMs;
}

/**
 * Writes (append: appends to) a file a CI job leaves in its project directory for the platform to
 * pick up (reports, dotenv outputs, summaries). That directory is a checkout of the change under
 * test, which can commit a symbolic link under the report's name to aim the job's write at another
 * file of the runner: the last component is opened with O_NOFOLLOW, and a link there is refused
 * (IO_ERROR) instead of followed. The directories above it are the job's configuration's choice.
 */
export function writeJobFileSync(path: string, data: string, opts: { append?: boolean } = {}): void {
  mkdirSync(dirname(path), { recursive: true });
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW | (opts.append ? constants.O_APPEND : constants.O_TRUNC);
  let fd: number;
  try {
    fd = openSync(path, flags, 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') {
      throw new CtError('IO_ERROR', `refusing to write ${path}: it is a symbolic link (committed to the repository?); nothing was written`, { path });
    }
    throw asIoError(e, path);
  }
  try {
    const bytes = Buffer.from(data, 'utf8');
    for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off);
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads a file of a checkout the way a build must: a regular file, not followed through a
 * symbolic link at its name (a committed `security/apparmor -> /proc/self/environ` packed the CI
 * job's secrets into a signed bundle), never a FIFO or device (opened non-blocking, then checked:
 * a FIFO blocked `ct pack` for good), at most `maxBytes`. USAGE when it is not such a file.
 * `operatorPath`: a path the operator gave on the command line, not the checkout's: a link, a
 * pipe or /dev/stdin is theirs to give (still at most `maxBytes`). `readFrom`: another path to
 * the same file, opened instead (ct pack's /proc/self/fd/N/ct.toml, through the directory's
 * handle); messages still name `path`, the file as the user knows it. `keepOver`: a file of more
 * than `maxBytes` is not refused: the read stops there and returns what it has (more than
 * `maxBytes`, at most 64 KiB more), for a caller that reports the size its own way.
 */
export async function readRegularFile(path: string, maxBytes: number, what: string, opts: { operatorPath?: boolean; readFrom?: string; keepOver?: boolean } = {}): Promise<Buffer> {
  let fh;
  try {
    fh = await open(opts.readFrom ?? path, constants.O_RDONLY | (opts.operatorPath ? 0 : constants.O_NOFOLLOW | constants.O_NONBLOCK));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') throw new CtError('USAGE', `${path}: ${what} is a symbolic link; it must be a regular file (links are not followed)`, { path });
    throw asIoError(e, path);
  }
  try {
    const st = await fh.stat();
    if (!opts.operatorPath && !st.isFile()) throw new CtError('USAGE', `${path}: ${what} is not a regular file`, { path });
    if (st.isDirectory()) throw new CtError('USAGE', `${path}: ${what} is a directory`, { path });
    const chunks: Buffer[] = [];
    let size = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(64 * 1024);
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      size += bytesRead;
      if (size > maxBytes && !opts.keepOver) throw new CtError('USAGE', `${path}: ${what} is more than ${maxBytes} bytes`, { path, max: maxBytes });
      chunks.push(buf.subarray(0, bytesRead));
      if (size > maxBytes) break;
    }
    return Buffer.concat(chunks);
  } catch (e) {
    throw asIoError(e, path);
  } finally {
    await fh.close();
  }
}
