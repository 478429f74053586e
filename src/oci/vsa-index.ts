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

/** Same environment and same deployer key: the older one is superseded by the newer. */
export function sameSeries(a: Descriptor, b: Descriptor): boolean {
  const env = a.annotations?.[ANNOTATION_VSA_ENVIRONMENT];
  const key = a.annotations?.[ANNOTATION_VSA_VERIFIER];
  return env !== undefined && key !== undefined && env === b.annotations?.[ANNOTATION_VSA_ENVIRONMENT] && key === b.annotations?.[ANNOTATION_VSA_VERIFIER];
}

/** Creation time in ms, or undefined when the annotation is missing or not an RFC 3339 time. */
function createdMs(d: Descriptor): number | undefined {
  const s = d.annotations?.[ANNOTATION_CREATED];
  if (typeof s !== 'string' || s.length > 64 || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i.test(s)) return undefined;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : t;
}

/**
 * `list` newest first by creation time; those without one after them, later in the list first
 * (the tag index is appended to, so later is newer). Stable otherwise.
 */
export function newestFirst(list: Descriptor[]): Descriptor[] {
  const keyed = list.map((d, i) => ({ d, i, t: createdMs(d) }));
  keyed.sort((a, b) => {
    if (a.t !== undefined && b.t !== undefined && a.t !== b.t) return b.t - a.t;
    if ((a.t === undefined) !== (b.t === undefined)) return a.t === undefined ? 1 : -1;
    return b.i - a.i;
  });
  return keyed.map((k) => k.d);
}

/**
 * The tag index's descriptors once `added` (a deploy VSA) is in: every non-VSA descriptor kept in
 * place; the VSAs of `added`'s environment and key replaced by it; at most MAX_VSAS VSAs, the
 * newest. An index over-full from before (VSAs without annotations) shrinks to the cap here.
 */
export function withVsa(list: Descriptor[], added: Descriptor): Descriptor[] {
  const vsas = list.filter((d) => isDeployVsa(d) && d.digest !== added.digest && !sameSeries(d, added));
  const kept = new Set(newestFirst(vsas).slice(0, MAX_VSAS - 1));
  return [...list.filter((d) => !isDeployVsa(d) || kept.has(d)), added];
}

/**
 * On a registry with the referrers API the list is the registry's: a superseded VSA goes only
 * when its manifest is deleted. These are the ones to delete once `added` is pushed: same
 * environment and key, strictly older (by creation time; none without one), at most MAX_VSAS.
 * Strictly older, so that two replicas publishing at once never delete each other's newest.
 */
export function supersededBy(list: Descriptor[], added: Descriptor): Descriptor[] {
  const t = createdMs(added);
  if (t === undefined) return [];
  return list.filter((d) => isDeployVsa(d) && d.digest !== added.digest && sameSeries(d, added) && (createdMs(d) ?? Infinity) < t).slice(0, MAX_VSAS);
}
