/**
 * Deploy VSAs published with the bundle: an OCI artifact (artifactType
 * `application/vnd.cerro-torre.vsa.v1+json`, one layer holding the canonical DSSE envelope) whose
 * subject is the image manifest — a referrer where the registry has the referrers API, else in
 * the `sha256-<hex>` tag index (distribution-spec 1.1 fallback), like the attestations `ct push`
 * attaches. Each is annotated with its environment, signing key and creation time (vsa-index.ts):
 * in the tag index a new one replaces the older ones of its environment and key, and at most 32
 * stay. Reading them back is bounded (count and bytes): the newest of each environment and key
 * first, at most 32; what is read is verified by the caller. The labels are unauthenticated: VSAs
 * planted under 32 series can crowd the real ones out (vsa-index.ts), denial of service only.
 */
import { sha256Digest } from '../core/digest.js';
import { CtError } from '../core/errors.js';
import { MAX_VSA_BYTES, VSA_ARTIFACT_TYPE } from '../attest/vsa.js';
import { RegistryClient, type ClientOptions } from './client.js';
import { ANNOTATION_TITLE, EMPTY_DESCRIPTOR, EMPTY_JSON, MT, type Descriptor, type ImageManifest } from './media-types.js';
import { parseReference } from './reference.js';
import { supersededBy, toRead, vsaAnnotations, withVsa, type VsaLabels } from './vsa-index.js';

/** Media type of the one layer: a DSSE envelope (in-toto). */
export const DSSE_MEDIA_TYPE = 'application/vnd.dsse.envelope.v1+json';

export interface AttachedVsa {
  /** Digest of the artifact manifest. */
  digest: string;
  via: 'api' | 'tag';
  /**
   * Referrers API: superseded VSA manifests of the same environment and key the registry would not
   * delete, with the code of each refusal.
   */
  notDeleted?: { digest: string; code: string }[];
  /** Referrers API: the image's referrers could not be listed (this code): nothing was deleted. */
  unlisted?: string;
  /**
   * Tag index: a VSA of the same environment and key created later was already listed (this one
   * was published out of order): the manifest is pushed but not put in the index.
   */
  superseded?: true;
}

/**
 * Which superseded VSAs may be deleted: `isOurs` tells whether a VSA envelope (the DSSE layer of
 * a listed manifest) is one this publisher signed for the image and environment. Without it
 * nothing is deleted.
 */
export interface PruneOptions {
  isOurs: (envelope: Buffer) => boolean;
  /** The whole pruning step's time (default PRUNE_DEADLINE_MS): past it no more is deleted. */
  deadlineMs?: number;
}

/**
 * A listed VSA manifest read to decide on its deletion: a real one is about 1 KB; a bigger one is
 * not ours and is skipped unread (at 4 MiB each, 32 candidates made one publish read 128 MiB).
 */
export const MAX_CANDIDATE_MANIFEST = 64 * 1024;
/**
 * Pruning is best effort after the VSA is published: a registry answering each request just
 * inside its own timeout does not hold the deploy for 32 × (manifest, blob, delete) timeouts.
 */
export const PRUNE_DEADLINE_MS = 30_000;

/** Pushes one VSA as a referrer of the reference's image (pinned by digest), labelled for supersession. */
export async function attachVsa(reference: string, envelope: Uint8Array, labels: VsaLabels, opts: ClientOptions = {}, prune?: PruneOptions): Promise<AttachedVsa> {
  const ref = parseReference(reference);
  if (!ref.digest) throw new CtError('REFERENCE_INVALID', `${reference}: a VSA is attached to an image pinned by digest`, { reference });
  if (envelope.length > MAX_VSA_BYTES) throw new CtError('VSA_INVALID', `VSA larger than ${MAX_VSA_BYTES} bytes`, {});
  const client = await RegistryClient.open(ref, opts);
  try {
    const image = await client.getManifest(ref.digest);
    const subject: Descriptor = { mediaType: image.mediaType, digest: image.digest, size: image.bytes.length };
    const bytes = Buffer.from(envelope);
    const layer: Descriptor = { mediaType: DSSE_MEDIA_TYPE, digest: sha256Digest(bytes), size: bytes.length, annotations: { [ANNOTATION_TITLE]: 'deploy.vsa.json' } };
    await client.pushBlob(EMPTY_DESCRIPTOR, { bytes: EMPTY_JSON });
    await client.pushBlob(layer, { bytes });
    const annotations = vsaAnnotations(labels);
    const manifest: ImageManifest = { schemaVersion: 2, mediaType: MT.imageManifest, artifactType: VSA_ARTIFACT_TYPE, config: EMPTY_DESCRIPTOR, layers: [layer], subject, annotations };
    const m = Buffer.from(JSON.stringify(manifest));
    const { digest, subjectAccepted } = await client.putManifest(sha256Digest(m), m, MT.imageManifest);
    const added: Descriptor = { mediaType: MT.imageManifest, digest, size: m.length, artifactType: VSA_ARTIFACT_TYPE, annotations };
    if (subjectAccepted) {
      if (!prune) return { digest, via: 'api', notDeleted: [] };
      const until = Math.min(opts.deadline ?? Infinity, Date.now() + (prune.deadlineMs ?? PRUNE_DEADLINE_MS));
      client.setDeadline(until);
      return { digest, via: 'api', ...(await deleteSuperseded(client, image.digest, added, prune, until)) };
    }
    let listed = true;
    await client.addReferrerByTag(image.digest, added, (list, a) => {
      const after = withVsa(list, a);
      listed = after.includes(a);
      return after;
    });
    return { digest, via: 'tag', ...(listed ? {} : { superseded: true as const }) };
  } finally {
    await client.close();
  }
}

/**
 * Best effort: deletes the older VSA manifests of `added`'s environment and key, which the
 * registry would otherwise list forever (a list ct reads whole, bounded: client.ts). Deleting is
 * often refused (distribution disables it by default; push credentials may lack the right): a
 * refusal is returned for the caller to log, never an error — the VSA is published either way,
 * and an old one left behind only costs list space (readers take the newest of each environment
 * first). Deleting an old VSA loses nothing: the server keeps every VSA it signed (GET /api/v1/vsas).
 *
 * The list is the registry's, unauthenticated: a candidate is deleted only once its own manifest
 * (fetched by digest, hash checked) is a VSA about this image, annotated as an older one of the
 * same series, whose envelope `isOurs`. Never the image itself nor the VSA just pushed. Each
 * candidate's manifest is read within MAX_CANDIDATE_MANIFEST (bigger: skipped), and the whole
 * step within `until` (listing included).
 */
async function deleteSuperseded(client: RegistryClient, imageDigest: string, added: Descriptor, prune: PruneOptions, until: number): Promise<{ notDeleted: { digest: string; code: string }[]; unlisted?: string }> {
  let listed: Descriptor[];
  try {
    listed = (await client.referrers(imageDigest, VSA_ARTIFACT_TYPE)).descriptors;
  } catch (e) {
    return { notDeleted: [], unlisted: codeOf(e) };
  }
  const notDeleted: { digest: string; code: string }[] = [];
  for (const d of supersededBy(listed, added)) {
    if (d.digest === imageDigest || d.digest === added.digest) continue;
    // Past the step's deadline (the client's too: a request under way fails with NETWORK_ERROR):
    // reported like a refused delete, and the rest left.
    if (Date.now() > until) {
      notDeleted.push({ digest: d.digest, code: 'NETWORK_ERROR' });
      break;
    }
    try {
      if (!(await isOurSupersededVsa(client, imageDigest, added, d.digest, prune))) continue;
      await client.deleteManifest(d.digest);
    } catch (e) {
      // Gone already (another replica deleted it): what was wanted.
      if (codeOf(e) === 'REGISTRY_NOT_FOUND') continue;
      notDeleted.push({ digest: d.digest, code: codeOf(e) });
      // Not ours to delete (401/403) or deleting is off for this repository (405): the rest would be refused too.
      if (codeOf(e) === 'REGISTRY_AUTH_FAILED' || (e instanceof CtError && e.details.status === 405) || Date.now() > until) break;
    }
  }
  return { notDeleted };
}

function codeOf(e: unknown): string {
  return e instanceof CtError ? e.code : 'REGISTRY_ERROR';
}

/** The manifest at `digest` is a VSA of this image that `added` supersedes, and ours (see deleteSuperseded). */
async function isOurSupersededVsa(client: RegistryClient, imageDigest: string, added: Descriptor, digest: string, prune: PruneOptions): Promise<boolean> {
  const m = await client.getImageManifestWithin(digest, MAX_CANDIDATE_MANIFEST);
  if (m?.subject?.digest !== imageDigest) return false;
  const own: Descriptor = { mediaType: MT.imageManifest, digest, size: 0, ...(typeof m.artifactType === 'string' ? { artifactType: m.artifactType } : {}), ...(m.annotations ? { annotations: m.annotations } : {}) };
  if (supersededBy([own], added).length !== 1) return false;
  const layer = m.layers.find((l) => l.mediaType === DSSE_MEDIA_TYPE);
  if (!layer || layer.size > MAX_VSA_BYTES) return false;
  return prune.isOurs(await client.pullBlobBytes(layer, MAX_VSA_BYTES));
}

/**
 * The VSA envelopes attached to the reference's image, newest first (by their creation
 * annotation; those without one, or dated more than 5 minutes ahead, last), the newest of each
 * environment and key taken first, at most 32, each at most 64 KiB: unverified.
 */
export async function fetchVsas(reference: string, opts: ClientOptions = {}): Promise<Buffer[]> {
  const ref = parseReference(reference);
  if (!ref.digest) throw new CtError('REFERENCE_INVALID', `${reference}: VSAs are looked up for an image pinned by digest`, { reference });
  const client = await RegistryClient.open(ref, opts);
  try {
    const { descriptors } = await client.referrers(ref.digest, VSA_ARTIFACT_TYPE);
    const out: Buffer[] = [];
    for (const d of toRead(descriptors)) {
      // A VSA's manifest is ~1 KB: one past the candidates' bound is not a VSA, skipped (not read
      // whole, not a failure of the whole lookup).
      const m = await client.getImageManifestWithin(d.digest, MAX_CANDIDATE_MANIFEST);
      if (!m) continue;
      const layer = m.layers.find((l) => l.mediaType === DSSE_MEDIA_TYPE);
      if (!layer || layer.size > MAX_VSA_BYTES) continue;
      out.push(await client.pullBlobBytes(layer, MAX_VSA_BYTES));
    }
    return out;
  } finally {
    await client.close();
  }
}
