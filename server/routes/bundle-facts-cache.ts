/**
 * The manifest and security files of the bundles the server stored, for the evidence view.
 *
 * Reading a `.ctp` streams and hashes the whole archive (hundreds of MiB for a big image) and
 * keeps up to 256 MiB of its blobs in memory while it does; before this each view of a
 * deployment's evidence, by any viewer, did it again, and views at once each held that memory.
 * A stored bundle is named by its digest and never changes, so its facts are read once (views
 * of one bundle at once share that read), kept within a byte budget, and at most two bundles are
 * read at a time whatever the number of requests.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Slots } from '../../src/oci/concurrency.js';
import { readBundleFacts } from '../../src/policy/bundle-facts.js';
import type { BundleFacts } from '../../src/policy/types.js';

/** Bundles read at once for views. */
const READS_AT_ONCE = 2;
/** What the kept facts may weigh together (their JSON length): a profile can be up to 1 MiB. */
const KEPT_BYTES = 16 * 1024 * 1024;

const DIGEST = /^sha256:[0-9a-f]{64}$/;

export class BundleFactsCache {
  private readonly kept = new Map<string, { facts: BundleFacts; bytes: number }>();
  private readonly reading = new Map<string, Promise<BundleFacts | null>>();
  private readonly slots = new Slots(READS_AT_ONCE);
  private bytes = 0;
  constructor(private readonly bundlesDir: string, private readonly maxBytes = KEPT_BYTES) {}

  /** The facts of the stored bundle `digest`; null when it is not stored (or not readable). */
  async get(digest: unknown): Promise<BundleFacts | null> {
    if (typeof digest !== 'string' || !DIGEST.test(digest)) return null;
    const hit = this.kept.get(digest);
    if (hit) {
      // Most recently used last: the oldest go first when the budget is full.
      this.kept.delete(digest);
      this.kept.set(digest, hit);
      return hit.facts;
    }
    let p = this.reading.get(digest);
    if (!p) {
      p = this.read(digest).finally(() => this.reading.delete(digest));
      this.reading.set(digest, p);
    }
    return p;
  }

  private async read(digest: string): Promise<BundleFacts | null> {
    const file = join(this.bundlesDir, `${digest.slice(7)}.ctp`);
    // Not kept when absent or unreadable: the bundle may be stored later, an I/O error may pass.
    if (!existsSync(file)) return null;
    const facts = await this.slots.run(() => readBundleFacts(file)).catch(() => null);
    if (!facts) return null;
    const bytes = JSON.stringify(facts).length;
    if (bytes > this.maxBytes) return facts;
    this.kept.set(digest, { facts, bytes });
    this.bytes += bytes;
    for (const [k, v] of this.kept) {
      if (this.bytes <= this.maxBytes) break;
      this.kept.delete(k);
      this.bytes -= v.bytes;
    }
    return facts;
  }
}
