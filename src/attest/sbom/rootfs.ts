import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { BLOB_PREFIX, type CtpArchive } from '../../bundle/archive.js';
import { LAYER_LIMITS } from '../../bundle/limits.js';
import { checkEntryName } from '../../bundle/names.js';
import type { OciImage } from '../../bundle/oci.js';
import { readTar } from '../../bundle/tar-read.js';

/** A regular file of the final root filesystem. */
export interface RootfsFile {
  size: number;
  sha256: string;
  sha1: string;
  /** Content, for the few files the SBOM reads (package databases, lockfiles, os-release). */
  data?: Buffer;
}

/** The root filesystem after all layers, as path → file (no leading `/`), sorted by the caller. */
export type RootfsIndex = Map<string, RootfsFile>;

const MAX_KEPT = 64 * 1024 * 1024;

/** Files whose content the SBOM needs. */
export function isInteresting(path: string): boolean {
  return (
    path === 'var/lib/dpkg/status' ||
    path.startsWith('var/lib/dpkg/status.d/') ||
    path === 'lib/apk/db/installed' ||
    path === 'etc/os-release' ||
    path === 'usr/lib/os-release' ||
    (posix.basename(path) === 'package-lock.json' && !path.split('/').includes('node_modules'))
  );
}

/**
 * Streams every layer of the image once, in order, and keeps what the final root filesystem holds:
 * a hash of every regular file and the bytes of the few the SBOM parses. Nothing is extracted to
 * disk. Whiteouts follow the OCI layer rules: `.wh.NAME` removes NAME (and what is below it) from
 * the lower layers, `.wh..wh..opq` empties its directory of lower-layer content; an entry of
 * another type (directory, link) hides a lower file of the same path.
 */
export async function indexRootfs(archive: CtpArchive, image: OciImage): Promise<RootfsIndex> {
  const fs: RootfsIndex = new Map();
  for (const layer of image.layers) {
    const where = `layer ${layer.digest}`;
    const added = new Map<string, RootfsFile | null>();
    const removed: string[] = [];
    const opaque: string[] = [];
    await readTar(archive.openEntry(`${BLOB_PREFIX}${layer.digest.slice(7)}`), {
      limits: LAYER_LIMITS,
      where,
      onEntry(e) {
        const path = checkEntryName(e.rawName, `${where}: ${JSON.stringify(e.rawName).slice(0, 200)}`, LAYER_LIMITS, { allowDotSlash: true });
        if (path === '') return;
        const base = posix.basename(path);
        const dir = posix.dirname(path) === '.' ? '' : posix.dirname(path);
        if (base === '.wh..wh..opq') {
          opaque.push(dir);
          return;
        }
        if (base.startsWith('.wh.')) {
          removed.push(dir ? `${dir}/${base.slice(4)}` : base.slice(4));
          return;
        }
        if (e.type !== 'file') {
          added.set(path, null);
          return;
        }
        const keep = isInteresting(path) && e.size <= MAX_KEPT;
        const h256 = createHash('sha256');
        const h1 = createHash('sha1');
        const parts: Buffer[] = [];
        return {
          data(c: Buffer) {
            h256.update(c);
            h1.update(c);
            if (keep) parts.push(Buffer.from(c));
          },
          end() {
            added.set(path, { size: e.size, sha256: h256.digest('hex'), sha1: h1.digest('hex'), ...(keep ? { data: Buffer.concat(parts) } : {}) });
          },
        };
      },
    });
    const dropUnder = (prefix: string, self: boolean) => {
      for (const p of [...fs.keys()]) if ((self && p === prefix) || prefix === '' || p.startsWith(`${prefix}/`)) fs.delete(p);
    };
    for (const r of removed) dropUnder(r, true);
    for (const o of opaque) dropUnder(o, false);
    for (const [p, f] of added) {
      if (f) {
        fs.set(p, f);
      } else {
        fs.delete(p);
      }
    }
  }
  return fs;
}
