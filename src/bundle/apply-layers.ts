import { closeSync, constants, fchmodSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, rmSync, symlinkSync, unlinkSync, writeSync, type Stats } from 'node:fs';
import { lstat, mkdir, readdir, rename, rm, rmdir } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import { CtError, asIoError } from '../core/errors.js';
import { tempPathFor } from '../core/fs.js';
import { BLOB_PREFIX, CtpArchive } from './archive.js';
import { checkOciLayout } from './check-layout.js';
import { LAYER_LIMITS, limitsWith, type TarLimits } from './limits.js';
import { checkEntryName } from './names.js';
import type { Platform } from './oci.js';
import { imageFromOciLayout } from './pack/from-oci-layout.js';
import { readTar, type TarEntry } from './tar-read.js';

export interface ApplyOptions {
  /** Layer limits; maxTotalBytes and maxEntries bound all layers together. */
  limits?: Partial<TarLimits>;
  platform?: Platform;
}

export interface AppliedLayer {
  digest: string;
  entries: number;
  bytes: number;
}

export interface ApplyResult {
  rootfs: string;
  layers: AppliedLayer[];
  /** Entries not created: device nodes and FIFOs (a rootless runtime cannot make them). */
  skipped: { layer: string; name: string; type: string }[];
}

/** One layer to extract: its descriptor's digest and size, and how to read its bytes. */
export interface LayerRef {
  digest: string;
  size: number;
  open: () => Readable;
}

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

/**
 * Applies one layer tar to `root` with synchronous filesystem calls, so every entry's effect is
 * complete before the next entry is looked at (a symlink made by entry N is seen by entry N+1).
 */
class LayerApplier {
  /** Directories (relative) known to be real directories: skips repeated lstat walks. */
  private readonly safeDirs = new Set<string>(['']);
  readonly dirModes = new Map<string, number>();
  private created = new Set<string>();
  layer = '';

  constructor(private readonly root: string, private readonly limits: TarLimits, private readonly skipped: ApplyResult['skipped']) {}

  startLayer(digest: string): void {
    this.layer = digest;
    this.created = new Set();
  }

  private forget(rel: string): void {
    if (!this.safeDirs.has(rel)) return;
    for (const d of [...this.safeDirs]) if (d === rel || d.startsWith(`${rel}/`)) this.safeDirs.delete(d);
  }

  /**
   * Makes sure every component of `dir` is a real directory inside the rootfs, creating missing
   * ones; a symlink anywhere on the way is refused (never written through), whoever created it.
   */
  private ensureDir(dir: string, at: string): void {
    if (this.safeDirs.has(dir)) return;
    const parts = dir.split('/');
    let rel = '';
    for (const part of parts) {
      rel = rel ? `${rel}/${part}` : part;
      if (this.safeDirs.has(rel)) continue;
      const abs = join(this.root, rel);
      let st: Stats | undefined;
      try {
        st = lstatSync(abs);
      } catch {
        st = undefined;
      }
      if (!st) {
        mkdirSync(abs, { mode: 0o755 });
      } else if (st.isSymbolicLink()) {
        throw new CtError('TAR_UNSAFE_LINK', `${at}: path goes through symlink ${rel} (writing through links is refused)`, { layer: this.layer, path: rel });
      } else if (!st.isDirectory()) {
        throw new CtError('TAR_UNSAFE_PATH', `${at}: ${rel} is not a directory`, { layer: this.layer, path: rel });
      }
      this.safeDirs.add(rel);
    }
  }

  private removeExisting(rel: string, keepDir: boolean): void {
    const abs = join(this.root, rel);
    let st: Stats;
    try {
      st = lstatSync(abs);
    } catch {
      return;
    }
    if (keepDir && st.isDirectory()) return;
    this.forget(rel);
    // Its directories' modes go with it: a path recorded under a removed directory may lead
    // through whatever replaces it (a symlink to a host directory) when the modes are applied.
    if (st.isDirectory()) for (const d of this.dirModes.keys()) if (d === rel || d.startsWith(`${rel}/`)) this.dirModes.delete(d);
    if (st.isDirectory()) rmSync(abs, { recursive: true, force: true });
    else unlinkSync(abs);
  }

  entry(te: TarEntry, where: string): { data(c: Buffer): void; end(): void } | void {
    const at = `${where}: entry ${JSON.stringify(te.rawName).slice(0, 200)} at offset ${te.offset}`;
    const name = checkEntryName(te.rawName, at, this.limits, { allowDotSlash: true });
    if (name === '') return;
    const dir = posix.dirname(name) === '.' ? '' : posix.dirname(name);
    const base = posix.basename(name);
    if (base === OPAQUE) {
      this.ensureDir(dir, at);
      const absDir = join(this.root, dir);
      for (const child of readdirSync(absDir)) {
        const rel = dir ? `${dir}/${child}` : child;
        if (!this.created.has(rel)) this.removeExisting(rel, false);
      }
      return;
    }
    if (base.startsWith(WHITEOUT)) {
      const target = dir ? `${dir}/${base.slice(WHITEOUT.length)}` : base.slice(WHITEOUT.length);
      checkEntryName(target, `${at} (whiteout target)`, this.limits);
      this.ensureDir(dir, at);
      if (!this.created.has(target)) this.removeExisting(target, false);
      return;
    }
    if (te.type === 'chardev' || te.type === 'blockdev' || te.type === 'fifo') {
      this.skipped.push({ layer: this.layer, name, type: te.type });
      return;
    }
    this.ensureDir(dir, at);
    const abs = join(this.root, name);
    this.created.add(name);
    switch (te.type) {
      case 'directory':
        this.removeExisting(name, true);
        try {
          mkdirSync(abs, { mode: 0o755 });
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw asIoError(e, abs);
        }
        this.safeDirs.add(name);
        this.dirModes.set(name, te.mode & 0o7777);
        return;
      case 'symlink':
        this.removeExisting(name, false);
        symlinkSync(te.linkpath ?? '', abs);
        return;
      case 'hardlink': {
        let target: string;
        try {
          target = checkEntryName(te.linkpath ?? '', `${at} (link target)`, this.limits, { allowDotSlash: true });
        } catch (e) {
          throw new CtError('TAR_UNSAFE_LINK', `${at}: hard link target ${JSON.stringify(te.linkpath)} is outside the rootfs`, { layer: this.layer, name, linkpath: te.linkpath }, { cause: e });
        }
        const tdir = posix.dirname(target) === '.' ? '' : posix.dirname(target);
        this.ensureDir(tdir, `${at} (link target)`);
        let st: Stats | undefined;
        try {
          st = lstatSync(join(this.root, target));
        } catch {
          st = undefined;
        }
        if (!st || !st.isFile()) {
          throw new CtError('TAR_UNSAFE_LINK', `${at}: hard link target ${JSON.stringify(te.linkpath)} is not a regular file inside the rootfs`, { layer: this.layer, name, linkpath: te.linkpath });
        }
        if (target === name) return;
        this.removeExisting(name, false);
        linkSync(join(this.root, target), abs);
        return;
      }
      case 'file': {
        this.removeExisting(name, false);
        const fd = openSync(abs, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
        const mode = te.mode & 0o7777;
        return {
          data(c) {
            writeSync(fd, c);
          },
          end() {
            // On the descriptor: no second path walk (and nothing a rename could redirect).
            fchmodSync(fd, mode);
            closeSync(fd);
          },
        };
      }
    }
  }
}

/**
 * Directory modes last, deepest first, so a read-only directory does not block its children. Each
 * is set on a descriptor opened without following a link, after every component above it was seen
 * to be a real directory (lstat): a path recorded for a directory that a later entry replaced by a
 * symlink must not carry the bundle's mode (setuid, 0777) to a host directory. Nothing else writes
 * in the temporary tree meanwhile, so the walk and the open see the same tree.
 */
function applyDirModes(root: string, modes: ReadonlyMap<string, number>): void {
  const real = new Map<string, boolean>([['', true]]);
  const isRealDir = (rel: string): boolean => {
    let known = real.get(rel);
    if (known === undefined) {
      const parent = rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '';
      known = isRealDir(parent) && lstatSync(join(root, rel), { throwIfNoEntry: false })?.isDirectory() === true;
      real.set(rel, known);
    }
    return known;
  };
  const dirs = [...modes].sort((a, b) => b[0].split('/').length - a[0].split('/').length);
  for (const [rel, mode] of dirs) {
    // A later whiteout or replacement may have removed the directory: only real ones get modes.
    if (!isRealDir(rel)) continue;
    const fd = openSync(join(root, rel), constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    try {
      fchmodSync(fd, mode);
    } finally {
      closeSync(fd);
    }
  }
}

async function layersOf(source: CtpArchive | string, platform?: Platform): Promise<LayerRef[]> {
  if (source instanceof CtpArchive) {
    const image = checkOciLayout(source, { platform });
    return image.layers.map((l) => ({ digest: l.digest, size: l.size, open: () => source.openEntry(`${BLOB_PREFIX}${l.digest.slice(7)}`) }));
  }
  const image = await imageFromOciLayout(source, platform);
  return image.layers.map((l) => ({ digest: l.digest, size: l.size, open: () => createReadStream((l.source as { path: string }).path, { highWaterMark: 1 << 20 }) }));
}

/**
 * Builds a root filesystem from an image's layers (from an opened `.ctp` or an OCI layout
 * directory), in order, into `rootfsDir` (which must not exist or be empty). Each layer is hashed
 * as it is extracted and must match its descriptor, so what lands on disk is exactly the bytes that
 * were verified. OCI whiteouts are honoured; names must stay inside the rootfs; nothing is written
 * through a symlink; hard links must point at regular files inside; device nodes are skipped and
 * reported. Work happens in a temporary directory renamed into place: on any failure nothing is left.
 */
export async function applyLayers(source: CtpArchive | string, rootfsDir: string, opts: ApplyOptions = {}): Promise<ApplyResult> {
  return applyLayerRefs(await layersOf(source, opts.platform), rootfsDir, opts);
}

/** applyLayers on layers already chosen (the unpack thread reads them from the file by offset). */
export async function applyLayerRefs(layers: readonly LayerRef[], rootfsDir: string, opts: ApplyOptions = {}): Promise<ApplyResult> {
  const limits = limitsWith(LAYER_LIMITS, opts.limits);
  try {
    const st = await lstat(rootfsDir);
    if (!st.isDirectory() || (await readdir(rootfsDir)).length > 0) {
      throw new CtError('IO_ERROR', `${rootfsDir}: exists and is not an empty directory`, { path: rootfsDir });
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw asIoError(e, rootfsDir);
  }
  const tmp = tempPathFor(rootfsDir);
  try {
    await mkdir(tmp, { mode: 0o755 });
  } catch (e) {
    throw asIoError(e, rootfsDir);
  }
  const skipped: ApplyResult['skipped'] = [];
  const applier = new LayerApplier(tmp, limits, skipped);
  const applied: AppliedLayer[] = [];
  let used = 0;
  let usedEntries = 0;
  try {
    for (const l of layers) {
      applier.startLayer(l.digest);
      const where = `layer ${l.digest}`;
      const r = await readTar(l.open(), {
        // Bytes and entries are bounded over all layers together, not per layer.
        limits: { ...limits, maxTotalBytes: limits.maxTotalBytes - used, maxEntries: limits.maxEntries - usedEntries },
        where,
        onEntry: (te) => applier.entry(te, where),
      });
      if (r.digest !== l.digest || r.size !== l.size) {
        throw new CtError('DIGEST_MISMATCH', `${where}: extracted bytes hash to ${r.digest} (${r.size} bytes), expected ${l.size} bytes`, { layer: l.digest, expected: l.digest, actual: r.digest });
      }
      used += r.tarBytes;
      usedEntries += r.entries;
      applied.push({ digest: l.digest, entries: r.entries, bytes: r.tarBytes });
    }
    applyDirModes(tmp, applier.dirModes);
    try {
      await rmdir(rootfsDir);
    } catch {
      /* absent: nothing to replace */
    }
    await rename(tmp, rootfsDir);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    if (e instanceof CtError) throw e;
    throw asIoError(e, rootfsDir);
  }
  return { rootfs: rootfsDir, layers: applied, skipped };
}
