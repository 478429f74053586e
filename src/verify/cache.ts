/**
 * Verification cache (SPEC §4): key = bundle digest + image digest + trust material (trust-store
 * digest, trusted-root digest) + policy digest, plus the caller's options that change the outcome
 * (mode, legacy PAE, requirements). A bounded in-memory LRU. Entries expire after a TTL and no
 * later than the earliest `validUntil` of a key that signed, so time-dependent outcomes (key
 * validity) are re-judged; revocation drops entries at once (the store digest changes too, but a
 * revocation learnt from a log must not wait for the old entries to age out).
 */
import { canonicalBytes } from '../core/jcs.js';
import { sha256Digest } from '../core/digest.js';
import { findKey } from '../trust/store.js';
import type { TrustStore } from '../trust/types.js';
import type { VerificationReport } from './report.js';

export interface CacheKeyParts {
  bundleDigest: string;
  imageDigest: string;
  trustStoreDigest: string;
  trustedRootDigest?: string;
  /** The keyless identities trusted (TrustMaterial.keyless). */
  keylessDigest?: string;
  policyDigest?: string;
  /** Anything else that changes the outcome (mode, legacy PAE, requirements). */
  options?: unknown;
}

export function cacheKey(p: CacheKeyParts): string {
  return sha256Digest(
    canonicalBytes({
      b: p.bundleDigest,
      i: p.imageDigest,
      t: p.trustStoreDigest,
      r: p.trustedRootDigest ?? null,
      k: p.keylessDigest ?? null,
      p: p.policyDigest ?? null,
      o: p.options ?? null,
    }),
  );
}

interface Entry {
  report: VerificationReport;
  expires: number;
}

export interface CacheOptions {
  maxEntries?: number;
  ttlMs?: number;
}

export class VerificationCache {
  private readonly map = new Map<string, Entry>();
  private readonly maxEntries: number;
  private readonly ttlMs: number;
  private revocationMark: string | undefined;
  hits = 0;
  misses = 0;

  constructor(opts: CacheOptions = {}) {
    this.maxEntries = opts.maxEntries ?? 256;
    this.ttlMs = opts.ttlMs ?? 5 * 60_000;
  }

  get size(): number {
    return this.map.size;
  }

  get(key: string, now: Date = new Date()): VerificationReport | undefined {
    const e = this.map.get(key);
    if (!e || e.expires <= now.getTime()) {
      if (e) this.map.delete(key);
      this.misses++;
      return undefined;
    }
    // Re-insert: Map iteration order is insertion order, so the first key is the least recent.
    this.map.delete(key);
    this.map.set(key, e);
    this.hits++;
    return e.report;
  }

  set(key: string, report: VerificationReport, store?: TrustStore, now: Date = new Date()): void {
    let expires = now.getTime() + this.ttlMs;
    if (store) {
      for (const a of report.evidence.attestations) {
        for (const s of a.signers) {
          const until = s.keyId ? findKey(store, s.keyId)?.key.validUntil : undefined;
          if (until) expires = Math.min(expires, Date.parse(until));
        }
      }
    }
    if (expires <= now.getTime()) return;
    this.map.delete(key);
    this.map.set(key, { report, expires });
    while (this.map.size > this.maxEntries) this.map.delete(this.map.keys().next().value as string);
  }

  clear(): void {
    this.map.clear();
  }

  /**
   * Call with the current trust store before each lookup: when its revocation lists changed since
   * the last call, every entry is dropped.
   */
  noteTrustStore(store: TrustStore): void {
    const mark = sha256Digest(canonicalBytes(store.revoked ?? {}));
    if (this.revocationMark !== undefined && mark !== this.revocationMark) this.clear();
    this.revocationMark = mark;
  }

  /** Drops entries that involve a revoked digest: a bundle, an attestation or a signing key. */
  revoke(digests: Iterable<string>): number {
    const set = new Set(digests);
    let n = 0;
    for (const [k, e] of this.map) {
      const ev = e.report.evidence;
      const hit =
        (ev.bundleDigest && set.has(ev.bundleDigest)) ||
        set.has(ev.imageDigest) ||
        ev.attestations.some((a) => set.has(a.digest) || a.signers.some((s) => s.keyId !== undefined && set.has(s.keyId)));
      if (hit) {
        this.map.delete(k);
        n++;
      }
    }
    return n;
  }
}
