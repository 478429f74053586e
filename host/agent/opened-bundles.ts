import { stat } from 'node:fs/promises';
import type { CtpArchive } from '../../src/bundle/archive.js';
import { openCtpToVerify } from '../../src/bundle/read.js';

/**
 * The bundles this host opened (read once, every byte hashed: the bundle digest, every entry's
 * digest, the small files kept), by bundle digest, so that a redeploy or a retried assignment of
 * the same bundle does not read and hash the whole file again. What the cache holds is only what
 * that one hashing pass established; the verdict is not here (the runner's VerificationCache keys
 * it by trust store, trusted roots, policy set and mode, and a revocation empties it).
 *
 * An entry is used only while the file is the very one that was read: same device, inode, size,
 * modification and change times (nanoseconds), taken before the read. Any write, replacement or
 * re-download changes the change time or the inode, and the file is read and hashed again. Layers
 * are hashed again anyway as they are extracted (applyLayers), and everything else the runner
 * uses (manifest, security profiles, image config) is the in-memory copy that was hashed: no byte
 * that is run or enforced escapes its digest check.
 */
export class OpenedBundles {
  private readonly map = new Map<string, { identity: string; archive: CtpArchive; bytes: number }>();
  private bytes = 0;
  hits = 0;

  /** At most `maxEntries` archives holding at most `maxBytes` of kept (in-memory) files in all. */
  constructor(private readonly maxEntries = 16, private readonly maxBytes = 64 * 1024 * 1024) {}

  /**
   * The archive at `path`, from the cache when `digest` was read from this very file before;
   * otherwise opened (hashed) for verification and kept if it is the bundle `digest` names.
   */
  async open(path: string, digest: string): Promise<CtpArchive> {
    const identity = await identityOf(path);
    const hit = this.map.get(digest);
    if (hit && identity !== undefined && hit.identity === identity) {
      this.map.delete(digest); // most recently used last
      this.map.set(digest, hit);
      this.hits++;
      return hit.archive;
    }
    const archive = await openCtpToVerify(path);
    this.forget(digest);
    if (identity !== undefined && archive.bundleDigest === digest) this.keep(digest, identity, archive);
    return archive;
  }

  forget(digest: string): void {
    const e = this.map.get(digest);
    if (!e) return;
    this.map.delete(digest);
    this.bytes -= e.bytes;
  }

  get size(): number {
    return this.map.size;
  }

  private keep(digest: string, identity: string, archive: CtpArchive): void {
    let bytes = 0;
    for (const e of archive.entries.values()) bytes += e.data?.length ?? 0;
    if (bytes > this.maxBytes / 2) return; // one huge bundle does not push out all the others
    this.map.set(digest, { identity, archive, bytes });
    this.bytes += bytes;
    for (const [d] of this.map) {
      if (this.map.size <= this.maxEntries && this.bytes <= this.maxBytes) break;
      this.forget(d);
    }
  }
}

/** Device, inode, size, mtime and ctime (ns) of a regular file; undefined for anything else. */
async function identityOf(path: string): Promise<string | undefined> {
  const st = await stat(path, { bigint: true }).catch(() => undefined);
  if (!st?.isFile()) return undefined;
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}
