import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { asIoError } from '../core/errors.js';
import { BLOB_PREFIX, type CtpArchive, type CtpEntry } from '../bundle/archive.js';
import { openCtp } from '../bundle/read.js';
import { checkOciLayout } from '../bundle/check-layout.js';
import type { OciImage } from '../bundle/oci.js';

export { BLOB_PREFIX };

/** One regular file of the .ctp, by name, with its place in the uncompressed tar. */
export interface IndexedEntry extends CtpEntry {
  name: string;
}

export interface PreparedCtp {
  archive: CtpArchive;
  image: OciImage;
  /** Regular files in tar order. */
  entries: IndexedEntry[];
  byName: Map<string, IndexedEntry>;
  /** An uncompressed tar with the same bytes (the .ctp itself when it was not compressed). */
  tarPath: string;
  tarSize: number;
  tarDigest: string;
  cleanup(): Promise<void>;
}

/**
 * Opens a .ctp for pushing with the bundle reader (every entry checked and hashed, manifest.toml
 * validated; offsets of headers and bodies recorded), checks the OCI layout (blob digests, the
 * image manifest, image_digest), and, for a compressed .ctp, decompresses it once to a temp file so that
 * blobs are streamed from byte ranges instead of being held in memory.
 */
export async function prepareCtp(path: string): Promise<PreparedCtp> {
  const archive = await openCtp(path);
  const entries: IndexedEntry[] = [...archive.entries].map(([name, e]) => ({ ...e, name })).sort((a, b) => a.offset - b.offset);
  // Blob digests and sizes, the image manifest and image_digest = its digest (bundle reader).
  const image = checkOciLayout(archive);
  const byName = new Map(entries.map((e) => [e.name, e]));
  if (!archive.compressed) {
    return { archive, image, entries, byName, tarPath: path, tarSize: archive.size, tarDigest: archive.bundleDigest, cleanup: async () => {} };
  }
  const tmp = await mkdtemp(join(tmpdir(), 'ct-push-'));
  const tarPath = join(tmp, 'bundle.tar');
  const hash = createHash('sha256');
  let size = 0;
  const tap = new Transform({
    transform(c: Buffer, _e, cb) {
      hash.update(c);
      size += c.length;
      cb(null, c);
    },
  });
  try {
    await pipeline(createReadStream(path, { highWaterMark: 1 << 20 }), createGunzip({ chunkSize: 256 * 1024 }), tap, createWriteStream(tarPath));
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw asIoError(e, path);
  }
  return {
    archive,
    image,
    entries,
    byName,
    tarPath,
    tarSize: size,
    tarDigest: `sha256:${hash.digest('hex')}`,
    cleanup: () => rm(tmp, { recursive: true, force: true }),
  };
}
