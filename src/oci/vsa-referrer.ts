/**
 * Deploy VSAs published with the bundle: an OCI artifact (artifactType
 * `application/vnd.cerro-torre.vsa.v1+json`, one layer holding the canonical DSSE envelope) whose
 * subject is the image manifest — a referrer where the registry has the referrers API, else in
 * the `sha256-<hex>` tag index (distribution-spec 1.1 fallback), like the attestations `ct push`
 * attaches. Reading them back is bounded (count and bytes); what is read is verified by the caller.
 */
import { sha256Digest } from '../core/digest.js';
import { CtError } from '../core/errors.js';
import { MAX_VSA_BYTES, VSA_ARTIFACT_TYPE } from '../attest/vsa.js';
import { RegistryClient, type ClientOptions } from './client.js';
import { ANNOTATION_TITLE, EMPTY_DESCRIPTOR, EMPTY_JSON, MT, type Descriptor, type ImageManifest } from './media-types.js';
import { parseReference } from './reference.js';

/** Media type of the one layer: a DSSE envelope (in-toto). */
export const DSSE_MEDIA_TYPE = 'application/vnd.dsse.envelope.v1+json';
const MAX_VSAS = 32;

export interface AttachedVsa {
  /** Digest of the artifact manifest. */
  digest: string;
  via: 'api' | 'tag';
}

/** Pushes one VSA as a referrer of the reference's image (pinned by digest). */
export async function attachVsa(reference: string, envelope: Uint8Array, opts: ClientOptions = {}): Promise<AttachedVsa> {
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
    const manifest: ImageManifest = { schemaVersion: 2, mediaType: MT.imageManifest, artifactType: VSA_ARTIFACT_TYPE, config: EMPTY_DESCRIPTOR, layers: [layer], subject };
    const m = Buffer.from(JSON.stringify(manifest));
    const { digest, subjectAccepted } = await client.putManifest(sha256Digest(m), m, MT.imageManifest);
    if (subjectAccepted) return { digest, via: 'api' };
    await client.addReferrerByTag(image.digest, { mediaType: MT.imageManifest, digest, size: m.length, artifactType: VSA_ARTIFACT_TYPE });
    return { digest, via: 'tag' };
  } finally {
    await client.close();
  }
}

/** The VSA envelopes attached to the reference's image (at most 32, each at most 64 KiB), unverified. */
export async function fetchVsas(reference: string, opts: ClientOptions = {}): Promise<Buffer[]> {
  const ref = parseReference(reference);
  if (!ref.digest) throw new CtError('REFERENCE_INVALID', `${reference}: VSAs are looked up for an image pinned by digest`, { reference });
  const client = await RegistryClient.open(ref, opts);
  try {
    const { descriptors } = await client.referrers(ref.digest, VSA_ARTIFACT_TYPE);
    const out: Buffer[] = [];
    for (const d of descriptors.slice(0, MAX_VSAS)) {
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
