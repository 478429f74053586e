import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { CtError, asIoError } from '../core/errors.js';
import { CTP_LIMITS } from './limits.js';
import { checkEntryName, compareNames } from './names.js';
import { HashingFileSink } from './sink.js';
import { END_OF_ARCHIVE, defaultMtime, encodeHeader, padding } from './tar-write.js';
import { openCtp } from './read.js';

/**
 * Content of one file to put in a `.ctp`: bytes in memory, a file on disk (streamed), or a stream
 * factory with a known size. `sha256` (hex), when given, is checked while the bytes are copied.
 */
export type CtpFileSource = Buffer | { path: string; size?: number; sha256?: string } | { open: () => Readable; size: number; sha256?: string };

export interface WriteCtpOptions {
  /** Compress the whole archive (default false: the layers inside are compressed already). */
  gzip?: boolean;
  /** mtime in seconds for every entry; default SOURCE_DATE_EPOCH or 0. */
  mtime?: number;
  /** A set a signal handler unlinks (src/cli/interrupt.ts): the output's temporary is entered there. */
  temps?: Set<string>;
  /** false: refuse (IO_ERROR) a file that appeared at `out` while writing, instead of replacing it (default true). */
  replace?: boolean;
}

export interface WriteResult {
  /** `sha256:` digest of the written `.ctp` (the bundle digest) and its size. */
  digest: string;
  size: number;
}

/**
 * Writes a `.ctp` deterministically: entries sorted bytewise by name, parent directories added
 * (0755), files 0644, uid/gid 0, no user names, one mtime, no varying pax fields. Written to a
 * temporary file beside `out` and renamed; big files are streamed, never held in memory.
 */
export async function writeCtp(out: string, files: Map<string, CtpFileSource> | Record<string, CtpFileSource>, opts: WriteCtpOptions = {}): Promise<WriteResult> {
  const map = files instanceof Map ? files : new Map(Object.entries(files));
  const mtime = opts.mtime ?? defaultMtime();
  const dirs = new Set<string>();
  for (const raw of map.keys()) {
    const name = checkEntryName(raw, `writeCtp: ${raw}`, CTP_LIMITS);
    if (name !== raw) throw new CtError('TAR_UNSAFE_PATH', `writeCtp: ${raw}: names must not end with "/"`, { name: raw });
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  for (const d of dirs) if (map.has(d)) throw new CtError('TAR_DUPLICATE_ENTRY', `writeCtp: ${d} is both a file and a directory`, { name: d });
  const order = [...[...dirs].map((d) => `${d}/`), ...map.keys()].sort(compareNames);

  const sink = new HashingFileSink(out, { gzip: !!opts.gzip, temps: opts.temps, replace: opts.replace });
  try {
    for (const entry of order) {
      if (entry.endsWith('/')) {
        await sink.write(encodeHeader({ name: entry, type: 'Directory', size: 0, mode: 0o755, mtime }));
        continue;
      }
      const src = map.get(entry)!;
      if (Buffer.isBuffer(src)) {
        await sink.write(encodeHeader({ name: entry, type: 'File', size: src.length, mode: 0o644, mtime }));
        await sink.write(src);
        await sink.write(padding(src.length));
        continue;
      }
      let size: number;
      let open: () => Readable;
      if ('path' in src) {
        const path = src.path;
        try {
          size = src.size ?? (await stat(path)).size;
        } catch (e) {
          throw asIoError(e, path);
        }
        open = () => createReadStream(path, { highWaterMark: 1 << 20 });
      } else {
        size = src.size;
        open = src.open;
      }
      await sink.write(encodeHeader({ name: entry, type: 'File', size, mode: 0o644, mtime }));
      await sink.copyFrom(open(), `${entry}`, { size, sha256: src.sha256 });
      await sink.write(padding(size));
    }
    await sink.write(END_OF_ARCHIVE);
  } catch (e) {
    await sink.abort();
    throw e;
  }
  const r = await sink.commit();
  return { digest: r.digest, size: r.size };
}

export interface RewriteOptions {
  /** Files to add or replace (e.g. `attestations/bundle.json`). */
  add?: Map<string, CtpFileSource> | Record<string, CtpFileSource>;
  /** Names to drop. */
  remove?: string[];
  /** Default: as the input (compression kept, mtime of its manifest.toml). */
  gzip?: boolean;
  mtime?: number;
  /** As WriteCtpOptions.replace. */
  replace?: boolean;
}

/**
 * Rewrites a `.ctp` with files added or removed (how `ct sign` adds attestations). Every other
 * file keeps its exact content (each is re-hashed while copied and checked against what the input
 * held), and the output follows the same deterministic rules as writeCtp. `out` may equal `input`.
 */
export async function rewriteCtp(input: string, out: string, opts: RewriteOptions = {}): Promise<WriteResult> {
  const archive = await openCtp(input);
  const add = opts.add instanceof Map ? opts.add : new Map(Object.entries(opts.add ?? {}));
  const remove = new Set(opts.remove ?? []);
  for (const r of remove) {
    if (r === 'manifest.toml' || r.startsWith('oci-layout/')) {
      throw new CtError('USAGE', `rewriteCtp: ${r} cannot be removed from a bundle`, { name: r });
    }
  }
  const files = new Map<string, CtpFileSource>();
  for (const [name, e] of archive.entries) {
    if (remove.has(name) || add.has(name)) continue;
    files.set(name, e.data ?? { open: () => archive.openEntry(name), size: e.size, sha256: e.sha256 });
  }
  for (const [name, src] of add) files.set(name, src);
  return writeCtp(out, files, { gzip: opts.gzip ?? archive.compressed, mtime: opts.mtime ?? archive.mtime, replace: opts.replace });
}
