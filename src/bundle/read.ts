import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { CtError, asIoError } from '../core/errors.js';
import { CTP_LIMITS, IN_MEMORY_BLOB_BYTES, MAX_MANIFEST_BYTES, MAX_SMALL_FILE_BYTES, limitsWith, type TarLimits } from './limits.js';
import { checkEntryName } from './names.js';
import { readTar, type BodySink, type TarEntry } from './tar-read.js';
import { BLOB_PREFIX, CtpArchive, type CtpEntry, type CtpSourceRef } from './archive.js';
import { parseManifest } from './manifest.js';
import { parseJson } from './json.js';

/** Files always kept in memory (small by nature; the verifier reads them all). */
function isSmallFile(name: string): boolean {
  return (
    name === 'manifest.toml' ||
    name === 'oci-layout/index.json' ||
    name === 'oci-layout/oci-layout' ||
    name.startsWith('attestations/') ||
    name.startsWith('security/') ||
    name.startsWith('signatures/') ||
    !name.includes('/')
  );
}

/** Blob bytes kept in memory per archive (beyond it blobs are streamed), so many small blobs cannot exhaust memory. */
const MAX_KEPT_BLOB_BYTES = 256 * 1024 * 1024;

/** All small files together (manifest, attestations, profiles…): beyond this the bundle is refused. */
const MAX_SMALL_FILES_TOTAL = 64 * 1024 * 1024;

export interface RawCtp {
  source: CtpSourceRef;
  digest: string;
  size: number;
  compressed: boolean;
  entries: Map<string, CtpEntry & { mtime: number }>;
  directories: Set<string>;
  /** Directories that had their own entry (not only implied by a file's name). */
  explicitDirectories: Set<string>;
}

/** Optional hook to receive every regular file's bytes as they stream (used by `ct unpack`). */
export type FileTap = (name: string, entry: TarEntry) => BodySink | void;

/**
 * Reads the outer archive of a `.ctp` (or of a legacy bundle) once: every entry is checked
 * (name, type, duplicates, limits) and hashed as it streams; small files are kept.
 */
export async function readCtpArchive(src: string | Buffer, limits?: Partial<TarLimits>, tap?: FileTap): Promise<RawCtp> {
  const lim = limitsWith(CTP_LIMITS, limits);
  const where = typeof src === 'string' ? src : '<buffer>';
  let input: Readable;
  if (typeof src === 'string') {
    try {
      const st = await stat(src);
      if (!st.isFile()) throw new CtError('IO_ERROR', `${src}: not a regular file`, { path: src });
    } catch (e) {
      throw asIoError(e, src);
    }
    input = createReadStream(src, { highWaterMark: 1 << 20 });
  } else {
    input = Readable.from([src]);
  }
  const entries = new Map<string, CtpEntry & { mtime: number }>();
  const directories = new Set<string>();
  const explicitDirs = new Set<string>();
  let keptBlobBytes = 0;
  let keptSmallBytes = 0;

  const result = await readTar(input, {
    limits: lim,
    where,
    onEntry(te) {
      const at = `entry ${JSON.stringify(te.rawName).slice(0, 200)} at offset ${te.offset}`;
      const name = checkEntryName(te.rawName, `${where}: ${at}`, lim);
      if (te.type === 'symlink' || te.type === 'hardlink') {
        throw new CtError('TAR_UNSAFE_LINK', `${where}: ${at}: ${te.type} to ${JSON.stringify(te.linkpath ?? '')} (a .ctp holds only files and directories)`, { where, name, offset: te.offset, linkpath: te.linkpath });
      }
      if (te.type === 'chardev' || te.type === 'blockdev' || te.type === 'fifo') {
        throw new CtError('TAR_DEVICE_NODE', `${where}: ${at}: ${te.type} (a .ctp holds only files and directories)`, { where, name, offset: te.offset });
      }
      const dup = (why: string): never => {
        throw new CtError('TAR_DUPLICATE_ENTRY', `${where}: ${at}: ${why}`, { where, name, offset: te.offset });
      };
      const parts = name.split('/');
      for (let i = 1; i < parts.length; i++) {
        const parent = parts.slice(0, i).join('/');
        if (entries.has(parent)) dup(`parent ${parent} is a file`);
        directories.add(parent);
      }
      if (te.type === 'directory') {
        if (entries.has(name)) dup('a file of the same name came earlier');
        if (explicitDirs.has(name)) dup('duplicate directory entry');
        explicitDirs.add(name);
        directories.add(name);
        return;
      }
      if (entries.has(name)) dup('duplicate file entry');
      if (directories.has(name)) dup('a directory of the same name came earlier');
      let keep = false;
      if (isSmallFile(name)) {
        const max = name === 'manifest.toml' ? MAX_MANIFEST_BYTES : MAX_SMALL_FILE_BYTES;
        if (te.size > max) {
          throw new CtError('TAR_LIMIT_EXCEEDED', `${where}: ${at}: ${te.size} bytes (max ${max} for this file)`, { where, name, offset: te.offset, limit: name === 'manifest.toml' ? 'manifest' : 'smallFile' });
        }
        keptSmallBytes += te.size;
        if (keptSmallBytes > MAX_SMALL_FILES_TOTAL) {
          throw new CtError('TAR_LIMIT_EXCEEDED', `${where}: ${at}: small files exceed ${MAX_SMALL_FILES_TOTAL} bytes in total`, { where, name, offset: te.offset, limit: 'smallFilesTotal' });
        }
        keep = true;
      } else if (name.startsWith(BLOB_PREFIX) && te.size <= IN_MEMORY_BLOB_BYTES && keptBlobBytes + te.size <= MAX_KEPT_BLOB_BYTES) {
        keptBlobBytes += te.size;
        keep = true;
      }
      const record: CtpEntry & { mtime: number } = {
        size: te.size,
        sha256: '',
        offset: te.offset,
        dataOffset: te.dataOffset,
        mode: te.mode,
        mtime: te.mtime ? Math.floor(te.mtime.getTime() / 1000) : 0,
      };
      entries.set(name, record);
      const hash = createHash('sha256');
      const chunks: Buffer[] = [];
      const inner = tap?.(name, te);
      return {
        data(c) {
          hash.update(c);
          if (keep) chunks.push(Buffer.from(c));
          inner?.data(c);
        },
        end() {
          record.sha256 = hash.digest('hex');
          if (keep) record.data = Buffer.concat(chunks, te.size);
          inner?.end();
        },
      };
    },
  });
  for (const [name, e] of entries) {
    if (e.sha256 === '') throw new CtError('TAR_MALFORMED', `${where}: entry ${name} was not read to its end`, { where, name });
  }
  return { source: typeof src === 'string' ? { path: src } : { buffer: src }, digest: result.digest, size: result.size, compressed: result.compressed, entries, directories, explicitDirectories: explicitDirs };
}

/**
 * Opens a `.ctp` bundle: one streaming pass over the file (gzip detected by magic bytes), every
 * entry checked and hashed, small files kept, `manifest.toml` parsed (bounded) and validated, the
 * OCI layout marker files parsed. Blob contents and digests are checked by checkOciLayout.
 * For a bundle about to be verified use openCtpToVerify: it parses nothing the signatures do not cover.
 */
export async function openCtp(src: string | Buffer, limits?: Partial<TarLimits>, tap?: FileTap): Promise<CtpArchive> {
  return openCtpWith(src, limits, tap, false);
}

/**
 * Opens a `.ctp` that is about to be verified without parsing `manifest.toml`: verifyCtpArchive
 * parses it only after finding its SHA-256 among the verified attestation subjects
 * (authenticate before parsing). `archive.manifest` throws until then.
 */
export async function openCtpToVerify(src: string | Buffer, limits?: Partial<TarLimits>): Promise<CtpArchive> {
  return openCtpWith(src, limits, undefined, true);
}

async function openCtpWith(src: string | Buffer, limits: Partial<TarLimits> | undefined, tap: FileTap | undefined, defer: boolean): Promise<CtpArchive> {
  const raw = await readCtpArchive(src, limits, tap);
  const where = typeof src === 'string' ? src : '<buffer>';
  const man = raw.entries.get('manifest.toml');
  if (!man) {
    if (raw.entries.has('manifest.ctp') && raw.entries.has('summary.json')) {
      throw new CtError('UNSUPPORTED_VERSION', `${where}: a legacy ctp_version 1.0 bundle (manifest.ctp + summary.json); read it with readLegacyCtp / ct inspect`, { where, legacy: true });
    }
    throw new CtError('MANIFEST_INVALID', `${where}: manifest.toml is missing`, { where });
  }
  // A directory entry no file lives under is bytes no signature covers (the writer makes only parents).
  const parents = new Set<string>();
  for (const n of raw.entries.keys()) for (let k = n.indexOf('/'); k !== -1; k = n.indexOf('/', k + 1)) parents.add(n.slice(0, k));
  for (const d of raw.explicitDirectories) {
    if (!parents.has(d)) throw new CtError('UNSIGNED_CONTENT', `${where}: directory ${d}/ holds no file (a .ctp has directory entries only for the parents of its files)`, { where, path: `${d}/`, what: 'empty directory' });
  }
  const manifest = defer ? undefined : parseManifest(man.data!, `${where}: manifest.toml`);
  const layoutFile = raw.entries.get('oci-layout/oci-layout');
  if (!layoutFile) throw new CtError('OCI_LAYOUT_INVALID', `${where}: oci-layout/oci-layout is missing`, { where, path: 'oci-layout/oci-layout' });
  const layout = parseJson(layoutFile.data!, `${where}: oci-layout/oci-layout`, 'OCI_LAYOUT_INVALID') as { imageLayoutVersion?: unknown };
  if (typeof layout?.imageLayoutVersion !== 'string') {
    throw new CtError('OCI_LAYOUT_INVALID', `${where}: oci-layout/oci-layout: imageLayoutVersion missing`, { where, path: 'oci-layout/oci-layout' });
  }
  if (!/^1\.\d+\.\d+$/.test(layout.imageLayoutVersion)) {
    throw new CtError('UNSUPPORTED_VERSION', `${where}: oci-layout/oci-layout: imageLayoutVersion ${layout.imageLayoutVersion} is not supported (1.x)`, { where, version: layout.imageLayoutVersion });
  }
  if (!raw.entries.has('oci-layout/index.json')) throw new CtError('OCI_LAYOUT_INVALID', `${where}: oci-layout/index.json is missing`, { where, path: 'oci-layout/index.json' });
  const entries = new Map<string, CtpEntry>();
  for (const [name, e] of raw.entries) {
    const { mtime: _m, ...rest } = e;
    entries.set(name, rest);
  }
  return new CtpArchive(raw.source, raw.digest, raw.size, raw.compressed, entries, raw.directories, manifest, man.mtime);
}
