/**
 * The two admission decisions over a parsed AdmissionReview request, given a judge that pins
 * images and returns verified verdicts (verdicts.ts in production, anything in tests of this
 * logic). Both fail closed: whatever cannot be decided denies, with the code that says why.
 *
 * - mutate: pins every image by tag to the digest the allow-listed registry names now, and sets
 *   the container's seccomp and AppArmor profiles to the bundle's (SPO names) and its
 *   capabilities to the granted ones (the manifest's that the policies allow; all others
 *   dropped), as a JSON Patch.
 * - validate: judges the digest it is given (never re-resolves a tag: what runs is what was
 *   judged), checks the policy verdict for the namespace's environment and that the security
 *   context is no weaker than the bundle's.
 */
import { isDeepStrictEqual } from 'node:util';
import { CtError } from '../core/errors.js';
import { mapLimit } from '../oci/concurrency.js';
import { parseReference } from '../oci/reference.js';
import { allowResponse, denyResponse, type AdmissionRequest, type AdmissionReviewOut } from './admission-review.js';
import { capabilitiesBeyond, desiredSecurityContext, effectiveProfile, strippedCapabilities, weakerThanBundle, type BundleProfiles } from './profiles.js';
import { isObj, podSpecOf, type ContainerRef, type PodSpecRef } from './workloads.js';
import { kubeletImageName } from './image-name.js';
import type { Exemptions } from './exempt.js';

export interface ImageVerdict {
  /** `registry/repository@sha256:…` judged. */
  reference: string;
  imageDigest: string;
  bundleDigest: string;
  allow: boolean;
  code?: string;
  message?: string;
  warnings: string[];
  profiles: BundleProfiles;
}

export interface ImageJudge {
  /** Tag → digest through the allow-listed registry; returns `registry/repository@sha256:…`. */
  pin(image: string): Promise<string>;
  /** The verdict for a pinned reference in an environment (verified bundle + policy). */
  judge(pinned: string, environment: string): Promise<ImageVerdict>;
}

export interface AdmitContext {
  judge: ImageJudge;
  environment: string;
  /** Images let through unverified and untouched (exempt.ts): neither pinned, patched nor judged. */
  exempt?: Exemptions;
  /**
   * Filled by mutate, for the decision record: the capabilities its patch takes from each
   * container (at most MAX_STRIPPED_RECORDED of them), when it answers with the patch.
   */
  stripped?: StrippedCapabilities[];
}

export interface StrippedCapabilities {
  /** `containers[0] "web"`. */
  container: string;
  /** What the container added beyond the granted capabilities (at most 8). */
  added: string[];
  /** It did not drop ALL: the runtime's default set (CHOWN, SETUID, NET_RAW, …) is taken away. */
  runtimeDefaults: boolean;
}

/** Containers whose stripped capabilities one decision record lists; a pod may have hundreds. */
export const MAX_STRIPPED_RECORDED = 64;

/** Distinct images judged per request; hundreds of containers of one image count once. */
export const MAX_DISTINCT_IMAGES = 64;
const PARALLEL = 8;

/** Registry and network failures say "could not decide" (503), not "denied by policy" (403). */
const UNAVAILABLE = new Set(['NETWORK_ERROR', 'REGISTRY_ERROR', 'REGISTRY_REFERRERS_TOO_LARGE', 'REGISTRY_AUTH_FAILED', 'IO_ERROR']);

export function denyFor(uid: string, e: unknown, what?: string): AdmissionReviewOut {
  const code = e instanceof CtError ? e.code : 'ADMISSION_INVALID';
  const message = e instanceof Error ? e.message : String(e);
  const httpCode = code === 'ADMISSION_INVALID' ? 400 : code === 'ADMISSION_DEADLINE' ? 504 : code === 'ADMISSION_INTERNAL' ? 500 : UNAVAILABLE.has(code) ? 503 : 403;
  return denyResponse(uid, code, what ? `${what}: ${message}` : message, { httpCode });
}

/**
 * Requests that carry no pod to judge pass untouched: DELETE, CONNECT, other subresources, and an
 * UPDATE of an object being deleted (its finalizers must be removable whatever its images are now:
 * a revoked bundle or a registry down left pods terminating for ever). Being deleted is read from
 * the old object, the API server's own copy: a client cannot set deletionTimestamp, but the
 * object it sends is its own.
 */
function judged(req: AdmissionRequest): boolean {
  if (req.operation !== 'CREATE' && req.operation !== 'UPDATE') return false;
  if (req.operation === 'UPDATE' && isObj(req.oldObject) && isObj(req.oldObject.metadata) && req.oldObject.metadata.deletionTimestamp) return false;
  return req.subResource === undefined || req.subResource === 'ephemeralcontainers';
}

/**
 * What an UPDATE changes, judged (and patched) alone; what it leaves as it was was admitted when it
 * came, or before this webhook watched the namespace (Kyverno leaves those too): a label change, a
 * scale, a finalizer's removal is not judged again, nor its pod patched.
 * - A workload's pod template: all its containers when the template's spec changed, none otherwise.
 * - A pod (whose containers may change only their image, and gain ephemeral containers): the
 *   containers that are new, or whose image or security context differ from the old pod's
 *   container of the same name in the same list; `existing` are those the old pod had.
 * Without a readable old object, every container is judged.
 */
function changedBy(req: AdmissionRequest, pod: PodSpecRef): { containers: ContainerRef[]; existing: Set<ContainerRef> } {
  if (req.operation !== 'UPDATE' || req.oldObject === undefined) return { containers: pod.containers, existing: new Set() };
  let old: PodSpecRef;
  try {
    old = podSpecOf(req.kind, req.oldObject);
  } catch {
    return { containers: pod.containers, existing: new Set() };
  }
  if (req.kind.kind !== 'Pod') return { containers: isDeepStrictEqual(old.spec, pod.spec) ? [] : pod.containers, existing: new Set() };
  const before = new Map(old.containers.map((c) => [`${c.list}/${c.name}`, c]));
  const existing = new Set<ContainerRef>();
  const containers = pod.containers.filter((c) => {
    const was = before.get(`${c.list}/${c.name}`);
    if (!was) return true;
    existing.add(c);
    return was.image !== c.image || !isDeepStrictEqual(was.securityContext, c.securityContext);
  });
  return { containers, existing };
}

function distinct<T>(containers: ContainerRef[], key: (c: ContainerRef) => T): T[] {
  const out = [...new Set(containers.map(key))];
  if (out.length > MAX_DISTINCT_IMAGES) throw new CtError('ADMISSION_TOO_LARGE', `${out.length} distinct images in one object; at most ${MAX_DISTINCT_IMAGES} are judged per request`, { images: out.length });
  return out;
}

/** `fn` of each key, 8 at a time; a failure names the image it was about (`image "…": …`). */
async function each<V>(keys: string[], fn: (k: string) => Promise<V>): Promise<Map<string, V>> {
  const out = new Map<string, V>();
  await mapLimit(keys, PARALLEL, async (k) => {
    try {
      out.set(k, await fn(k));
    } catch (e) {
      throw e instanceof CtError ? new CtError(e.code, `image ${JSON.stringify(k.slice(0, 200))}: ${e.message}`, e.details, { cause: e }) : e;
    }
  });
  return out;
}

const label = (c: ContainerRef) => `${c.list}[${c.index}] ${JSON.stringify(c.name)}`;

/**
 * An exempt image in a new container or init container. Never an ephemeral one, nor a running
 * pod's container changing its image: `kubectl debug --image=<exempt image> --target=app`, or a
 * patch of `app`'s image to an exempt one, would run unverified code inside a verified pod (its
 * volumes, token, network, processes). Each distinct image is matched once per request, at most
 * MAX_DISTINCT_IMAGES of them (more are judged, and refused as too many).
 */
function isExempt(c: ContainerRef, exempt: Exemptions, seen: Map<string, boolean>, existing: Set<ContainerRef>): boolean {
  if (c.list === 'ephemeralContainers' || existing.has(c)) return false;
  let hit = seen.get(c.image);
  if (hit === undefined) {
    if (seen.size >= MAX_DISTINCT_IMAGES) return false;
    seen.set(c.image, (hit = exempt.match(c.image) !== undefined));
  }
  return hit;
}

/**
 * The pod spec both webhooks judge, with the containers to judge (all of them, or what an UPDATE
 * changed: changedBy; exempt images left out), or their answer when there is nothing to judge or
 * it is malformed.
 */
function podOrAnswer(req: AdmissionRequest, exempt: Exemptions | undefined): { pod: PodSpecRef; containers: ContainerRef[]; existing: Set<ContainerRef> } | { answer: AdmissionReviewOut } {
  if (!judged(req)) return { answer: allowResponse(req.uid) };
  let pod: PodSpecRef;
  try {
    pod = podSpecOf(req.kind, req.object);
  } catch (e) {
    return { answer: denyFor(req.uid, e) };
  }
  const changed = changedBy(req, pod);
  const seen = new Map<string, boolean>();
  const containers = exempt ? changed.containers.filter((c) => !isExempt(c, exempt, seen, changed.existing)) : changed.containers;
  if (containers.length === 0) return { answer: allowResponse(req.uid) };
  const existing = changed.existing;
  return { pod, containers, existing };
}

export async function mutate(req: AdmissionRequest, ctx: AdmitContext): Promise<AdmissionReviewOut> {
  const got = podOrAnswer(req, ctx.exempt);
  if ('answer' in got) return got.answer;
  const { containers, existing } = got;
  // Pin each distinct image once, then find its verified bundle for the profiles.
  const pins = new Map<string, string>();
  const verdicts = new Map<string, ImageVerdict>();
  try {
    const images = distinct(containers, (c) => c.image);
    for (const [image, pinned] of await each(images, (i) => ctx.judge.pin(kubeletImageName(i)))) pins.set(image, pinned);
    for (const [pinned, v] of await each([...new Set(pins.values())], (p) => ctx.judge.judge(p, ctx.environment))) verdicts.set(pinned, v);
  } catch (e) {
    return denyFor(req.uid, e);
  }
  const patch: unknown[] = [];
  const warnings: string[] = [];
  const stripped: StrippedCapabilities[] = [];
  for (const c of containers) {
    const pinned = pins.get(c.image)!;
    if (pinned !== c.image) patch.push({ op: 'replace', path: `${c.pointer}/image`, value: pinned });
    // A running pod's containers may change their image only (the API server refuses any other
    // change of them): the validating webhook judges their security context as it is.
    if (req.kind.kind === 'Pod' && existing.has(c)) continue;
    const profiles = verdicts.get(pinned)!.profiles;
    const want = desiredSecurityContext(profiles, c.securityContext);
    if (!c.securityContext) patch.push({ op: 'add', path: `${c.pointer}/securityContext`, value: want });
    // `add` on an existing member replaces it (RFC 6902 §4.1): one op shape either way, and the
    // whole of `capabilities` (add and drop) is the webhook's.
    else for (const [k, v] of Object.entries(want)) patch.push({ op: 'add', path: `${c.pointer}/securityContext/${k}`, value: v });
    // Said, not silent: the container asked for a capability it will run without.
    const beyond = capabilitiesBeyond(profiles, c.securityContext);
    if (beyond.length > 0) warnings.push(`${c.name}: capabilities.add ${JSON.stringify(beyond.slice(0, 8)).slice(0, 200)} left out: granted ${JSON.stringify(profiles.capabilities)} (the manifest's that the policies allow)`);
    const s = strippedCapabilities(profiles, c.securityContext);
    if (s && stripped.length < MAX_STRIPPED_RECORDED) stripped.push({ container: label(c).slice(0, 300), ...s });
  }
  // Only now: an earlier return answers without the patch, which then strips nothing.
  ctx.stripped?.push(...stripped);
  return allowResponse(req.uid, { patch, warnings });
}

export async function validate(req: AdmissionRequest, ctx: AdmitContext): Promise<AdmissionReviewOut> {
  const got = podOrAnswer(req, ctx.exempt);
  if ('answer' in got) return got.answer;
  const { pod, containers } = got;
  const pinnedOf = new Map<ContainerRef, string>();
  for (const c of containers) {
    let ref;
    try {
      ref = parseReference(kubeletImageName(c.image));
    } catch (e) {
      return denyFor(req.uid, e, label(c));
    }
    if (!ref.digest) return denyResponse(req.uid, 'IMAGE_NOT_PINNED', `${label(c)}: image ${JSON.stringify(c.image.slice(0, 200))} is not pinned by digest (the mutating webhook pins it; is it installed?)`);
    pinnedOf.set(c, `${ref.registry}/${ref.repository}@${ref.digest}`);
  }
  let verdicts: Map<string, ImageVerdict>;
  try {
    verdicts = await each(distinct(containers, (c) => pinnedOf.get(c)!), (p) => ctx.judge.judge(p, ctx.environment));
  } catch (e) {
    return denyFor(req.uid, e);
  }
  const warnings: string[] = [];
  // Every container's denial, not the first only: a pod is fixed in one go, not one container a try.
  const denials: { code: string; message: string }[] = [];
  for (const c of containers) {
    const v = verdicts.get(pinnedOf.get(c)!)!;
    if (!v.allow) {
      denials.push({ code: v.code ?? 'POLICY_VIOLATION', message: `${label(c)} ${v.reference}: ${v.message ?? 'denied by policy'}` });
      continue;
    }
    const weaker = weakerThanBundle(c, pod.spec, v.profiles);
    if (weaker.length > 0) denials.push({ code: 'SECURITY_CONTEXT_WEAKER', message: `${label(c)}: weaker than bundle ${v.bundleDigest} asks: ${weaker.join('; ')}` });
    for (const w of v.warnings) warnings.push(`${c.name}: ${w}`);
    // Said, not silent: the bundle has an AppArmor profile this container runs without.
    if (v.profiles.apparmorNotEnforced && !effectiveProfile(c, pod.spec, 'appArmorProfile')) {
      warnings.push(`${c.name}: runs without its bundle's AppArmor profile: the nodes are not said to enforce AppArmor (--nodes-apparmor)`);
    }
  }
  if (denials.length > 0) {
    const [first, ...more] = denials;
    return denyResponse(req.uid, first.code, [first.message, ...more.map((d) => `also [${d.code}] ${d.message}`)].join('; '));
  }
  return allowResponse(req.uid, { warnings });
}

