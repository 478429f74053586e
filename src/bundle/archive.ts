import { createReadStream } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { CtError } from '../core/errors.js';
import { parseManifest, type CtpManifest } from './manifest.js';

/** One regular file of a `.ctp`, as recorded while the archive streamed past. */
export interface CtpEntry {
  size: number;
  /** Lowercase hex SHA-256 of the content (the form in-toto subjects use). */
  sha256: string;
  /** The content, for small files (manifest, attestations, security/*, small blobs). */
  data?: Buffer;
  /** Offsets of the header and of the content in the uncompressed tar stream. */
  offset: number;
  dataOffset: number;
  mode: number;
}

export type CtpSourceRef = { path: string } | { buffer: Buffer };

export const BLOB_PREFIX = 'oci-layout/blobs/sha256/';

/** An opened, structurally checked `.ctp` bundle. Content checks: see checkOciLayout. */
export class CtpArchive {
  constructor(
    readonly source: CtpSourceRef,
    /** `sha256:` digest of the `.ctp` file exactly as stored (compressed if it is). */
    readonly bundleDigest: string,
    readonly size: number,
    readonly compressed: boolean,
    readonly entries: Map<string, CtpEntry>,
    readonly directories: Set<string>,
    /** Parsed manifest, or undefined until verification authenticated its bytes (openCtpToVerify). */
    private parsedManifest: CtpManifest | undefined,
    /** mtime (seconds) of manifest.toml: what rewriteCtp keeps by default. */
    readonly mtime: number,
  ) {}

  /**
   * The parsed `manifest.toml`. An archive opened for verification (openCtpToVerify) has none
   * until verifyCtpArchive found the file's bytes among the verified subjects: reading it before
   * that is a bug, refused rather than answered from unauthenticated bytes.
   */
  get manifest(): CtpManifest {
    if (!this.parsedManifest) {
      throw new CtError('UNCOVERED_FILE', 'manifest.toml: not parsed yet: its bytes have not been found among verified attestation subjects', { path: 'manifest.toml', reason: 'unauthenticated' });
    }
    return this.parsedManifest;
  }

  /** Whether `manifest` may be read (parsed on open, or authenticated by verification). */
  get manifestReady(): boolean {
    return this.parsedManifest !== undefined;
  }

  /**
   * Parses `manifest.toml` once its bytes are signed: `signed` maps file names to the
   * `sha256:<hex>` digests verified attestations name (checkCoverage's result). The digest is
   * compared before a single byte is parsed; the parse itself is bounded (parseManifest).
   */
  authenticateManifest(signed: Readonly<Record<string, string>>): CtpManifest {
    // Checked at every verification, even of an archive parsed before (a host re-verifies the
    // archive it keeps, opened-bundles.ts, under another trust store or policy set).
    const e = this.entries.get('manifest.toml');
    if (!e?.data) throw new CtError('MANIFEST_INVALID', 'manifest.toml is missing', { path: 'manifest.toml' });
    const want = Object.prototype.hasOwnProperty.call(signed, 'manifest.toml') ? signed['manifest.toml'] : undefined;
    if (want !== `sha256:${e.sha256}`) {
      throw new CtError('UNCOVERED_FILE', `manifest.toml: sha256:${e.sha256} is not among the verified attestation subjects`, { path: 'manifest.toml', actual: `sha256:${e.sha256}`, expected: want ?? null });
    }
    this.parsedManifest ??= parseManifest(e.data, 'manifest.toml');
    return this.parsedManifest;
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** Content of a file kept in memory; throws for missing or large entries (use openEntry). */
  file(name: string): Buffer {
    const e = this.entries.get(name);
    if (!e) throw new CtError('MALFORMED_BUNDLE', `${name}: not in the bundle`, { name });
    if (!e.data) throw new CtError('MALFORMED_BUNDLE', `${name}: ${e.size} bytes, too large to hold in memory; stream it with openEntry`, { name });
    return e.data;
  }

  /** Digests (`sha256:<hex>`) of every blob under oci-layout/blobs/sha256/, sorted. */
  blobDigests(): string[] {
    const out: string[] = [];
    for (const name of this.entries.keys()) if (name.startsWith(BLOB_PREFIX)) out.push(`sha256:${name.slice(BLOB_PREFIX.length)}`);
    return out.sort();
  }

  /** Files outside oci-layout/ (what attestations must cover), sorted. */
  filesOutsideLayout(): string[] {
    return [...this.entries.keys()].filter((n) => !n.startsWith('oci-layout/')).sort();
  }

  /**
   * Streams one entry's content again. Callers that act on the bytes must hash what they read and
   * compare with `entries.get(name).sha256`: the file may have changed since it was opened.
   */
  openEntry(name: string): Readable {
    const e = this.entries.get(name);
    if (!e) throw new CtError('MALFORMED_BUNDLE', `${name}: not in the bundle`, { name });
    if (e.data) return Readable.from([e.data]);
    if (e.size === 0) return Readable.from([]);
    const start = e.dataOffset;
    const end = e.dataOffset + e.size;
    if (!this.compressed) {
      if ('buffer' in this.source) return Readable.from([this.source.buffer.subarray(start, end)]);
      return createReadStream(this.source.path, { start, end: end - 1, highWaterMark: 1 << 20 });
    }
    const raw = 'buffer' in this.source ? Readable.from([this.source.buffer]) : createReadStream(this.source.path, { highWaterMark: 1 << 20 });
    const gunzip = createGunzip({ chunkSize: 256 * 1024 });
    let pos = 0;
    let finished = false;
    const slice = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        if (finished) return cb(); // chunks already in flight when the range ended
        const from = Math.max(start - pos, 0);
        const to = Math.min(end - pos, chunk.length);
        pos += chunk.length;
        if (to > from) this.push(chunk.subarray(from, to));
        if (pos >= end) {
          finished = true;
          gunzip.unpipe(slice);
          this.push(null);
          raw.destroy();
          gunzip.destroy();
        }
        cb();
      },
    });
    raw.on('error', (err: Error) => slice.destroy(err));
    gunzip.on('error', (err) => slice.destroy(new CtError('GZIP_MALFORMED', `${name}: ${err.message}`, { name })));
    raw.pipe(gunzip).pipe(slice);
    return slice;
  }
}
