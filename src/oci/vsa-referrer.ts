/**
 * Deploy VSAs published with the bundle: an OCI artifact (artifactType
 * `application/vnd.cerro-torre.vsa.v1+json`, one layer holding the canonical DSSE envelope) whose
 * subject is the image manifest — a referrer where the registry has the referrers API, else in
 * the `sha256-<hex>` tag index (distribution-spec 1.1 fallback), like the attestations `ct push`
 * attaches. Each is annotated with its environment, signing key and creation time (vsa-index.ts):
 * in the tag index a new one replaces the older ones of its environment and key, and at most 32
 * stay. Reading them back is bounded (count and bytes), newest first; what is read is verified by
 * the caller.
 */
import { sha256Digest } from '../core/digest.js';
import { CtError } from '../core/errors.js';
import { MAX_VSA_BYTES, VSA_ARTIFACT_TYPE } from '../attest/vsa.js';
import { RegistryClient, type ClientOptions } from './client.js';
import { ANNOTATION_TITLE, EMPTY_DESCRIPTOR, EMPTY_JSON, MT, type Descriptor, type ImageManifest } from './media-types.js';
import { parseReference } from './reference.js';
import { MAX_VSAS, newestFirst, supersededBy, vsaAnnotations, withVsa, type VsaLabels } from './vsa-index.js';

/** Media type of the one layer: a DSSE envelope (in-toto). */
export const DSSE_MEDIA_TYPE = 'application/vnd.dsse.envelope.v1+json';

export interface AttachedVsa {
  /** Digest of the artifact manifest. */
  digest: string;
  via: 'api' | 'tag';
  /**
   * Referrers API: superseded VSA manifests of the same environment and key the registry would not
   * delete, with the code of each refusal (the image's digest when its referrers could not be listed).
   */
  notDeleted?: { digest: string; code: string }[];
}

/** Pushes one VSA as a referrer of the reference's image (pinned by digest), labelled for supersession. */
export async function attachVsa(reference: string, envelope: Uint8Array, labels: VsaLabels, opts: ClientOptions = {}): Promise<AttachedVsa> {
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
    if (subjectAccepted) return { digest, via: 'api', notDeleted: await deleteSuperseded(client, image.digest, added) };
    await client.addReferrerByTag(image.digest, added, withVsa);
    return { digest, via: 'tag' };
  } finally {
    await client.close();
  }
}

/**
 * Best effort: deletes the older VSA manifests of `added`'s environment and key, which the
 * registry would otherwise list forever (a list ct reads whole, bounded: client.ts). Deleting is
 * often refused (distribution disables it by default; push credentials may lack the right): a
 * refusal is returned for the caller to log, never an error — the VSA is published either way,
 * and an old one left behind only costs list space (readers take the newest first). Deleting
 * an old VSA loses nothing: the server keeps every VSA it signed (GET /api/v1/vsas).
 */
async function deleteSuperseded(client: RegistryClient, imageDigest: string, added: Descriptor): Promise<{ digest: string; code: string }[]> {
  const codeOf = (e: unknown) => (e instanceof CtError ? e.code : 'REGISTRY_ERROR');
  let listed: Descriptor[];
  try {
    listed = (await client.referrers(imageDigest, VSA_ARTIFACT_TYPE)).descriptors;
  } catch (e) {
    return [{ digest: imageDigest, code: codeOf(e) }];
  }
  const refused: { digest: string; code: string }[] = [];
  for (const d of supersededBy(listed, added)) {
    try {
      await client.deleteManifest(d.digest);
    } catch (e) {
      refused.push({ digest: d.digest, code: codeOf(e) });
      // Deleting is off for this repository (405) or not ours to do: the rest would be refused too.
      break;
    }
  }
  return refused;
}

/**
 * The VSA envelopes attached to the reference's image, newest first (by their creation
 * annotation; those without one last), at most 32, each at most 64 KiB: unverified.
 */
export async function fetchVsas(reference: string, opts: ClientOptions = {}): Promise<Buffer[]> {
  const ref = parseReference(reference);
  if (!ref.digest) throw new CtError('REFERENCE_INVALID', `${reference}: VSAs are looked up for an image pinned by digest`, { reference });
  const client = await RegistryClient.open(ref, opts);
  try {
    const { descriptors } = await client.referrers(ref.digest, VSA_ARTIFACT_TYPE);
    const out: Buffer[] = [];
    for (const d of newestFirst(descriptors).slice(0, MAX_VSAS)) {
      const m = await client.getImageManifest(d.digest);
      const layer = m.layers.find((l) => l.mediaType === DSSE_MEDIA_TYPE);
      if (!layer || layer.size > MAX_VSA_BYTES) continue;
      out.push(await client.pullBlobBytes(layer, MAX_VSA_BYTES));
    }
    return out;
  } finally {
    await client.close();
  }
}
