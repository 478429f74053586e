/**
 * The admission judge: pins tags through the allow-listed registry (the guarded client of
 * src/oci), fetches the signed .ctp of an image (OCI referrer, or the `sha256-<hex>` tag
 * fallback), verifies it with the library `ct verify` uses, and judges it with the policy set
 * for an environment.
 *
 * Two caches, both bounded LRUs with a TTL:
 * - verified bundles per (trust material, pinned reference): fetching and verifying is the
 *   expensive part, and the deploy server fills it when it verifies a bundle (`learn`), so
 *   admission rarely fetches;
 * - verdicts per (trust material, policy set digest, environment, pinned reference): a hit is
 *   a map lookup.
 * A changed trust store or policy set changes the key, so stale verdicts are never served.
 * Concurrent requests for one image share one fetch. Transient failures (registry down) are not
 * cached; final ones (tampered bundle, no bundle) are, for the TTL.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asIoError, boundText, CtError } from '../core/errors.js';
import { RegistryClient, type ClientOptions } from '../oci/client.js';
import { Slots } from '../oci/concurrency.js';
import { fetchCtp, SERVER_FETCH_DEADLINE, type FetchOptions } from '../oci/fetch.js';
import { parseReference } from '../oci/reference.js';
import { openCtpToVerify } from '../bundle/read.js';
import { verifyCtpArchive } from '../verify/ctp/verify-ctp.js';
import { VerificationCache } from '../verify/cache.js';
import { trustKeyOf, type TrustMaterial } from '../verify/report.js';
import { withPolicyKeyless } from '../policy/keyless-trust.js';
import { nextTimeBound } from '../verify/time-bound.js';
import type { Evidence, Finding } from '../verify/evidence.js';
import { bundleFactsFromArchive } from '../policy/bundle-facts.js';
import { evaluate } from '../policy/evaluate.js';
import { capabilitiesAllowed } from '../policy/capability-grant.js';
import type { PolicySet } from '../policy/policy-set.js';
import type { BundleFacts, HostFacts } from '../policy/types.js';
import type { ImageJudge, ImageVerdict } from './admit.js';
import { bundleProfiles } from './profiles.js';
import { bundleSeccompProblem } from './seccomp-check.js';

/** A bundle that verified (integrity), with what the policy engine judges. */
export interface VerifiedImage {
  reference: string;
  imageDigest: string;
  bundleDigest: string;
  evidence: Evidence;
  facts: BundleFacts;
  integrity: Finding[];
  /** trustKeyOf the trust material (keyless identities included) it was verified under. */
  trustKey?: string;
}

type VerifyOutcome = { ok: true; image: VerifiedImage } | { ok: false; code: string; message: string };

export interface JudgeOptions {
  trust: () => TrustMaterial | undefined;
  policies: () => PolicySet | undefined;
  /** Registry access: allow-list, allowed addresses, credentials (src/oci ClientOptions), the overall fetch deadline (default SERVER_FETCH_DEADLINE). */
  registry: ClientOptions & Pick<FetchOptions, 'overall'> & { allowedRegistries: string[]; insecure?: string[] };
  ttlMs?: number;
  maxEntries?: number;
  /** Where bundles are fetched to while verified (default `os.tmpdir()`: in a pod, a writable /tmp volume). */
  scratchDir?: string;
  /**
   * What the cluster's nodes enforce, as the policy engine sees a host. Linux nodes always
   * enforce seccomp (the kubelet applies Localhost profiles, SPO installs them); AppArmor only
   * where the nodes' kernels have it, which the operator states (`--nodes-apparmor`).
   */
  nodes?: Omit<HostFacts, 'environment'>;
}

/** The nodes' facts where the operator says they enforce AppArmor (`--nodes-apparmor`, `admission.nodesAppArmor`). */
export const APPARMOR_NODES: Omit<HostFacts, 'environment'> = { apparmor: { present: true, enforcing: true } };

const TRANSIENT = new Set(['NETWORK_ERROR', 'REGISTRY_ERROR', 'REGISTRY_REFERRERS_TOO_LARGE', 'REGISTRY_AUTH_FAILED', 'IO_ERROR', 'ADMISSION_INTERNAL']);

/** System errors of the network, not of the disk. */
const NETWORK_ERRNOS = new Set(['ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN']);

/**
 * What a failed fetch or verification says. The library's errors carry their code; a system error
 * (an `errno`) is NETWORK_ERROR for the network's, else IO_ERROR (a full disk; `scratch`: the
 * scratch directory could not be made, which it names: an admission pod without a writable /tmp
 * read "[NETWORK_ERROR] EROFS …"); anything else is a fault of ours, ADMISSION_INTERNAL, never a
 * verdict on the image: not cached.
 */
export function failureOf(e: unknown, scratch?: string): { ok: false; code: string; message: string } {
  if (e instanceof CtError) return { ok: false, code: e.code, message: e.message };
  const err = e as NodeJS.ErrnoException | undefined;
  if (typeof err?.code === 'string' && typeof err.syscall === 'string') {
    if (NETWORK_ERRNOS.has(err.code)) return { ok: false, code: 'NETWORK_ERROR', message: boundText(err.message, 512) };
    return { ok: false, code: 'IO_ERROR', message: scratch ? asIoError(e, `scratch directory ${scratch}`).message : boundText(err.message, 512) };
  }
  return { ok: false, code: 'ADMISSION_INTERNAL', message: boundText(`internal error: ${e instanceof Error ? e.message : String(e)}`, 512) };
}

/**
 * Bundles fetched and verified at once by one judge, whatever the number of requests: each
 * request judges up to 64 images and verification goes on past a request's deadline, so without
 * a bound a burst of pods naming new digests would open fetches (disk, bandwidth) without limit.
 */
export const MAX_FETCHES = 16;

/**
 * Tag lookups at once, likewise: each holds a registry connection for up to the registry timeout,
 * and requests answered at their deadline leave theirs running (a hung registry piled them up).
 */
export const MAX_PINS = 16;

class TtlLru<V> {
  private readonly map = new Map<string, { v: V; until: number }>();
  constructor(private readonly max: number, private readonly ttl: number) {}
  get(k: string): V | undefined {
    const e = this.map.get(k);
    if (!e) return undefined;
    this.map.delete(k);
    if (e.until <= Date.now()) return undefined;
    this.map.set(k, e);
    return e.v;
  }
  /** Kept for the TTL, and never past `until` (when the decision may change with the clock). */
  set(k: string, v: V, until = Infinity): void {
    this.map.delete(k);
    const end = Math.min(Date.now() + this.ttl, until);
    if (!(end > Date.now())) return;
    this.map.set(k, { v, until: end });
    while (this.map.size > this.max) this.map.delete(this.map.keys().next().value as string);
  }
  get size(): number {
    return this.map.size;
  }
  /** Drops every entry whose key does not start with `prefix`; returns how many. */
  keepOnly(prefix: string): number {
    let n = 0;
    for (const k of [...this.map.keys()]) if (!k.startsWith(prefix) && this.map.delete(k)) n++;
    return n;
  }
}

/** `registry/repository@sha256:…` of a reference that names a digest; otherwise undefined. */
export function pinnedOf(reference: string): string | undefined {
  const r = parseReference(reference);
  return r.digest ? `${r.registry}/${r.repository}@${r.digest}` : undefined;
}

export class AdmissionJudge implements ImageJudge {
  private readonly verified: TtlLru<VerifyOutcome>;
  private readonly verdicts: TtlLru<ImageVerdict>;
  private readonly inflight = new Map<string, Promise<VerifyOutcome>>();
  private readonly fetchSlots = new Slots(MAX_FETCHES);
  private readonly pinSlots = new Slots(MAX_PINS);
  /** Lookups of one tag asked for by several requests at once share one. */
  private readonly pinning = new Map<string, Promise<string>>();
  private readonly verifyCache = new VerificationCache({ maxEntries: 1024 });
  /** Counters for metrics and tests: verdicts served from cache, bundles fetched. */
  readonly stats = { verdictHits: 0, fetches: 0, learned: 0, purged: 0 };
  /** Trust and policy keys of the entries cached last; a change drops the entries of the old ones. */
  private lastTrust = '';
  private lastPolicy = '';

  constructor(private readonly opts: JudgeOptions) {
    const max = opts.maxEntries ?? 4096;
    const ttl = opts.ttlMs ?? 10 * 60_000;
    this.verified = new TtlLru(max, ttl);
    this.verdicts = new TtlLru(max, ttl);
  }

  async pin(image: string): Promise<string> {
    const ref = parseReference(image);
    if (ref.digest) return `${ref.registry}/${ref.repository}@${ref.digest}`;
    const o = this.opts.registry;
    if (o.allowedRegistries.length === 0) throw new CtError('REGISTRY_NOT_ALLOWED', 'no registry is allow-listed: tags cannot be pinned', {});
    const key = `${ref.registry}/${ref.repository}:${ref.tag ?? 'latest'}`;
    let p = this.pinning.get(key);
    if (!p) {
      p = this.pinSlots.run(async () => {
        const client = await RegistryClient.open(ref, { ...o, plainHttp: o.insecure?.includes(ref.registry) ?? false });
        try {
          const digest = await client.resolve(ref.tag ?? 'latest');
          if (!digest) throw new CtError('REGISTRY_NOT_FOUND', `${image}: no such tag in ${ref.registry}/${ref.repository}`, { image });
          return `${ref.registry}/${ref.repository}@${digest}`;
        } finally {
          await client.close();
        }
      }).finally(() => this.pinning.delete(key));
      this.pinning.set(key, p);
    }
    return p;
  }

  /** The deploy server hands over what it verified: later admissions of that image need no fetch. */
  learn(image: VerifiedImage): void {
    const store = this.opts.trust();
    if (!store) return;
    // The deploy server shares the trust store and policies; verified under what is in force now
    // only (a reload while it verified makes the verdict another trust's: not learnt).
    const key = trustKeyOf(withPolicyKeyless(store, this.opts.policies()));
    if (image.trustKey !== key) return;
    const r = parseReference(image.reference);
    const pinned = `${r.registry}/${r.repository}@${image.imageDigest}`;
    this.verified.set(`${key}|${pinned}`, { ok: true, image: { ...image, reference: pinned } });
    this.stats.learned++;
  }

  async judge(pinned: string, environment: string): Promise<ImageVerdict> {
    const store = this.opts.trust();
    if (!store) throw new CtError('UNKNOWN_KEY', 'no trust store is configured: nothing can be verified', {});
    const set = this.opts.policies();
    if (!set) throw new CtError('NO_POLICY', 'the policies could not be loaded: failing closed', {});
    // The keyless signers the policies name are the identities whose Sigstore attestations count.
    const trust = withPolicyKeyless(store, set);
    this.forgetStale(trustKeyOf(trust), set.digest);
    const vkey = `${trustKeyOf(trust)}|${set.digest}|${environment}|${pinned}`;
    const hit = this.verdicts.get(vkey);
    if (hit) {
      this.stats.verdictHits++;
      return hit;
    }
    const outcome = await this.verify(pinned, trust);
    if (!outcome.ok) throw new CtError(outcome.code as never, outcome.message, { reference: pinned });
    const img = outcome.image;
    const d = evaluate(set, { evidence: img.evidence, manifest: img.facts, host: { seccomp: true, ...this.opts.nodes, environment }, findings: img.integrity });
    const first = d.violations[0];
    // The pods would run under the bundle's profile instead of the runtime's default.
    const seccomp = d.allow ? bundleSeccompProblem(img.facts, set, d) : undefined;
    const verdict: ImageVerdict = {
      reference: pinned,
      imageDigest: img.imageDigest,
      bundleDigest: img.bundleDigest,
      allow: d.allow && seccomp === undefined,
      ...(d.allow && seccomp === undefined ? {} : seccomp !== undefined ? { code: 'POLICY_VIOLATION', message: seccomp } : { code: first?.code ?? 'POLICY_VIOLATION', message: first ? `${first.policy}/${first.rule}: ${first.message}` : 'denied by policy' }),
      warnings: d.warnings.map((w) => `${w.code}: ${w.policy}/${w.rule}: ${w.message}`),
      // Capabilities as a host grants them: the manifest's that the applying policies allow
      // (none where no policy has a runtime.capabilities rule), not the manifest's alone.
      profiles: bundleProfiles(img.facts, img.imageDigest, { nodesAppArmor: this.opts.nodes?.apparmor?.enforcing === true, capabilitiesAllowed: capabilitiesAllowed(set, d) }),
    };
    // Not past a policy's expiry or a key's validity bound: the same digests then judge otherwise.
    this.verdicts.set(vkey, verdict, nextTimeBound(set, store.store, Date.now()));
    return verdict;
  }

  /**
   * A reloaded trust store or policy set changes the keys, so old entries are never served; they
   * are dropped at once (not left to the LRU) so that they hold no memory and a revoked key's
   * verdicts are gone from the process, not merely unreachable.
   */
  private forgetStale(trust: string, policy: string): void {
    if (trust === this.lastTrust && policy === this.lastPolicy) return;
    if (trust !== this.lastTrust) this.stats.purged += this.verified.keepOnly(`${trust}|`);
    this.stats.purged += this.verdicts.keepOnly(`${trust}|${policy}|`);
    this.lastTrust = trust;
    this.lastPolicy = policy;
  }

  /** Verified bundle for a pinned reference: cache, else one shared fetch + verification. */
  private verify(pinned: string, trust: TrustMaterial): Promise<VerifyOutcome> {
    const key = `${trustKeyOf(trust)}|${pinned}`;
    const cached = this.verified.get(key);
    if (cached) return Promise.resolve(cached);
    let p = this.inflight.get(key);
    if (!p) {
      p = this.fetchSlots.run(() => this.fetchAndVerify(pinned, trust))
        .then((o) => {
          // Not when the trust store changed meanwhile: the entry would outlive its purge.
          if ((o.ok || !TRANSIENT.has(o.code)) && key.startsWith(`${this.lastTrust}|`)) this.verified.set(key, o);
          return o;
        })
        .finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  private async fetchAndVerify(pinned: string, trust: TrustMaterial): Promise<VerifyOutcome> {
    this.stats.fetches++;
    const o = this.opts.registry;
    if (o.allowedRegistries.length === 0) return { ok: false, code: 'REGISTRY_NOT_ALLOWED', message: 'no registry is allow-listed' };
    const scratch = this.opts.scratchDir ?? tmpdir();
    let dir: string;
    try {
      dir = await mkdtemp(join(scratch, 'ct-admission-'));
    } catch (e) {
      return failureOf(e, scratch);
    }
    try {
      const host = pinned.split('/')[0];
      // One deadline for the whole fetch: a registry must not hold a fetch slot for ever.
      const fetched = await fetchCtp(pinned, join(dir, 'bundle.ctp'), { overall: SERVER_FETCH_DEADLINE, ...o, plainHttp: o.insecure?.includes(host) ?? false });
      const archive = await openCtpToVerify(fetched.path);
      // As in the deploy server: the verifier judges integrity (audit mode); requirements are the policy's.
      const report = await verifyCtpArchive(archive, { trust, mode: 'audit', cache: this.verifyCache });
      if (report.decision === 'REJECT') return { ok: false, code: report.code ?? 'MALFORMED_BUNDLE', message: report.message ?? 'verification failed' };
      const facts = bundleFactsFromArchive(archive, pinned);
      return {
        ok: true,
        image: { reference: pinned, imageDigest: fetched.imageDigest, bundleDigest: fetched.bundleDigest, evidence: { ...report.evidence, fetchedReference: pinned }, facts, integrity: report.findings.filter((f) => f.integrity) },
      };
    } catch (e) {
      return failureOf(e);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}
