/**
 * Which deploy VSAs a referrers list keeps, and in what order they are read. A deploy VSA
 * artifact (and its descriptor in the `sha256-<hex>` tag index) is annotated with its environment,
 * the deployer key that signed it and its creation time; like `cosign attest --replace`, a new one
 * replaces the older ones of the same environment and key, and at most MAX_VSAS of them stay
 * (the newest), so that the tag index — read whole and rewritten on every deploy — stays bounded
 * however often an image is redeployed. Descriptors that are not deploy VSAs (what `ct push`
 * attached: attestations, the recipe; anything else) are never dropped.
 *
 * Annotations come from the registry, unauthenticated: they only choose what is kept and read
 * first; every VSA read is verified by its caller.
 */
import { VSA_ARTIFACT_TYPE } from '../attest/vsa.js';
import { ANNOTATION_CREATED, type Descriptor } from './media-types.js';

export const ANNOTATION_VSA_ENVIRONMENT = 'dev.cerro-torre.vsa.environment';
/** The key id of the deployer key that signed the VSA: one server (or fleet sharing a key). */
export const ANNOTATION_VSA_VERIFIER = 'dev.cerro-torre.vsa.verifier';
/** Deploy VSAs kept in a tag index and read back, whatever the number of environments. */
export const MAX_VSAS = 32;
/**
 * A creation time further ahead of the local clock than this counts as missing: a descriptor
 * dated 9999 (planted, or from a replica whose clock runs far ahead) would otherwise outrank
 * every real VSA for good, in what the tag index keeps and in what is read.
 */
export const MAX_CLOCK_AHEAD_MS = 5 * 60_000;

export interface VsaLabels {
  environment: string;
  /** Key id of the signing deployer key. */
  verifier: string;
  created: Date;
}

export function vsaAnnotations(l: VsaLabels): Record<string, string> {
  return { [ANNOTATION_VSA_ENVIRONMENT]: l.environment, [ANNOTATION_VSA_VERIFIER]: l.verifier, [ANNOTATION_CREATED]: l.created.toISOString() };
}

export function isDeployVsa(d: Descriptor): boolean {
  return d.artifactType === VSA_ARTIFACT_TYPE;
}

/** The (environment, deployer key) a VSA belongs to, or undefined when not annotated with both. */
function seriesOf(d: Descriptor): string | undefined {
  const env = d.annotations?.[ANNOTATION_VSA_ENVIRONMENT];
  const key = d.annotations?.[ANNOTATION_VSA_VERIFIER];
  return typeof env === 'string' && typeof key === 'string' ? JSON.stringify([env, key]) : undefined;
}

/** Same environment and same deployer key: the older one is superseded by the newer. */
export function sameSeries(a: Descriptor, b: Descriptor): boolean {
  const s = seriesOf(a);
  return s !== undefined && s === seriesOf(b);
}

/**
 * Creation time in ms, or undefined when the annotation is missing, not an RFC 3339 time, or
 * more than MAX_CLOCK_AHEAD_MS ahead of `now`.
 */
function createdMs(d: Descriptor, now: number): number | undefined {
  const s = d.annotations?.[ANNOTATION_CREATED];
  if (typeof s !== 'string' || s.length > 64 || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i.test(s)) return undefined;
  const t = Date.parse(s);
  return Number.isNaN(t) || t > now + MAX_CLOCK_AHEAD_MS ? undefined : t;
}

/**
 * `list` newest first by creation time; those without one (or dated in the future) after them,
 * later in the list first (the tag index is appended to, so later is newer). Stable otherwise.
 */
export function newestFirst(list: Descriptor[], now = Date.now()): Descriptor[] {
  const keyed = list.map((d, i) => ({ d, i, t: createdMs(d, now) }));
  keyed.sort((a, b) => {
    if (a.t !== undefined && b.t !== undefined && a.t !== b.t) return b.t - a.t;
    if ((a.t === undefined) !== (b.t === undefined)) return a.t === undefined ? 1 : -1;
    return b.i - a.i;
  });
  return keyed.map((k) => k.d);
}

/**
 * The deploy VSAs to read, newest first: the newest of each environment and key, then the
 * newest of the rest, at most MAX_VSAS. Many VSAs of one series (never deleted, or planted)
 * cannot crowd out another series' newest. VSAs planted under MAX_VSAS distinct (environment, key)
 * labels, dated now, still can: the labels are unauthenticated. Readers verify what they read, so
 * that is denial of service only, by someone with push rights to the repository.
 */
export function toRead(list: Descriptor[], now = Date.now()): Descriptor[] {
  const sorted = newestFirst(list.filter(isDeployVsa), now);
  const seen = new Set<string>();
  const heads: Descriptor[] = [];
  const rest: Descriptor[] = [];
  for (const d of sorted) {
    const s = seriesOf(d);
    if (s !== undefined && !seen.has(s)) {
      seen.add(s);
      heads.push(d);
    } else rest.push(d);
  }
  const picked = new Set([...heads, ...rest].slice(0, MAX_VSAS));
  return sorted.filter((d) => picked.has(d));
}

/**
 * The tag index's descriptors once `added` (a deploy VSA) is in: every non-VSA descriptor kept in
 * place; the VSAs of `added`'s environment and key that are older (or undated) replaced by it;
 * at most MAX_VSAS VSAs, the newest. A VSA of the same series created strictly later stays and
 * `added`, superseded on arrival (published out of order), is not put in; one created at the
 * same time stays beside it. An index over-full from before (VSAs without annotations) shrinks
 * to the cap here. The labels are unauthenticated: VSAs planted (with push rights) under
 * MAX_VSAS distinct series, dated now, evict the real ones of other series at this publish, and
 * one planted in `added`'s own series, dated up to MAX_CLOCK_AHEAD_MS ahead, keeps `added` out.
 * Denial of service only: readers verify.
 */
export function withVsa(list: Descriptor[], added: Descriptor, now = Date.now()): Descriptor[] {
  const t = createdMs(added, now) ?? -Infinity;
  const replaced = (d: Descriptor) => sameSeries(d, added) && (createdMs(d, now) ?? -Infinity) < t;
  const vsas = list.filter((d) => isDeployVsa(d) && d.digest !== added.digest && !replaced(d));
  const superseded = vsas.some((d) => sameSeries(d, added) && (createdMs(d, now) ?? -Infinity) > t);
  const kept = new Set(newestFirst(vsas, now).slice(0, superseded ? MAX_VSAS : MAX_VSAS - 1));
  const out = list.filter((d) => !isDeployVsa(d) || kept.has(d));
  return superseded ? out : [...out, added];
}

/**
 * On a registry with the referrers API the list is the registry's: a superseded VSA goes only
 * when its manifest is deleted. These are the ones to delete once `added` is pushed: same
 * environment and key, strictly older (by creation time; none without one), at most MAX_VSAS.
 * Strictly older, so that two replicas publishing at once never delete each other's newest, as
 * long as their clocks agree: with skew (up to MAX_CLOCK_AHEAD_MS counts as dated) the VSA signed
 * earlier may carry the later time and delete the other.
 */
export function supersededBy(list: Descriptor[], added: Descriptor, now = Date.now()): Descriptor[] {
  const t = createdMs(added, now);
  if (t === undefined) return [];
  return list.filter((d) => isDeployVsa(d) && d.digest !== added.digest && sameSeries(d, added) && (createdMs(d, now) ?? Infinity) < t).slice(0, MAX_VSAS);
}
