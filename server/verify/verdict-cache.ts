import type { OutgoingHttpHeaders } from 'node:http';
import type { PolicySet } from '../../src/policy/policy-set.js';
import type { TrustMaterial } from '../../src/verify/report.js';
import { nextTimeBound as timeBound } from '../../src/verify/time-bound.js';

/**
 * What a `/api/v1/verify` answer depends on besides the request: the trust material, the policy
 * set in force and the deploy VSAs recorded (policy input `verifiedIn`). Compared by identity: a
 * reload makes new objects, a recorded VSA bumps the version. `vsas` undefined means the VSAs may
 * change behind this process's back (PostgreSQL replicas record them too): nothing is cached then.
 */
export interface VerdictStamp {
  trust: TrustMaterial | undefined;
  policies: PolicySet | undefined;
  vsas: number | undefined;
}

interface Entry {
  stamp: VerdictStamp;
  /** The answer stops being reused at this time (ms): the next policy expiry or key validity bound. */
  until: number;
  headers: OutgoingHttpHeaders;
  body: Buffer;
}

/** No answer is reused longer than this, whatever it depends on. */
const MAX_AGE_MS = 60_000;
const MAX_ENTRIES = 1024;
/** Requests larger than this are never keys (a verify request is ~150 bytes). */
export const MAX_KEY_BYTES = 4096;

/**
 * Answers of `/api/v1/verify` for a reference pinned by digest, pre-serialised (status 200,
 * headers and body as the route sent them), keyed by the exact bytes of the request body. An entry
 * is used only while its stamp is the current one and its time bound has not passed; anything
 * else is answered by the route again. Bounded: past MAX_ENTRIES the oldest entry goes.
 */
export class VerdictCache {
  private readonly entries = new Map<string, Entry>();

  constructor(readonly stamp: () => VerdictStamp) {}

  /** Whether an answer computed now could be stored (checked before computing it). */
  static cacheable(stamp: VerdictStamp): boolean {
    return stamp.trust !== undefined && stamp.policies !== undefined && stamp.vsas !== undefined;
  }

  get(key: string, now = Date.now()): Entry | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    const s = this.stamp();
    if (e.until > now && e.stamp.trust === s.trust && e.stamp.policies === s.policies && e.stamp.vsas === s.vsas) return e;
    this.entries.delete(key);
    return undefined;
  }

  /** `stamp` is the one taken before the answer was computed: a change during it is not missed. */
  set(key: string, stamp: VerdictStamp, headers: OutgoingHttpHeaders, body: Buffer, now = Date.now()): void {
    if (!VerdictCache.cacheable(stamp) || key.length > MAX_KEY_BYTES) return;
    const until = Math.min(now + MAX_AGE_MS, nextTimeBound(stamp, now));
    if (!(until > now)) return;
    this.entries.delete(key);
    if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, { stamp, until, headers, body });
  }

  get size(): number {
    return this.entries.size;
  }
}

/** nextTimeBound of what a stamp holds (src/verify/time-bound.ts). */
export function nextTimeBound(stamp: VerdictStamp, now: number): number {
  return timeBound(stamp.policies, stamp.trust?.store, now);
}
