import { createHash } from 'node:crypto';
import { createReadStream, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { CtError, asIoError } from '../core/errors.js';
import { sha256Digest } from '../core/digest.js';
import { BlockGzip, GZIP_BLOCK, GZIP_LEVEL } from '../bundle/gzip.js';
import { RegistryClient, type ClientOptions } from './client.js';
import { prepareCtp, type PreparedCtp } from './ctp-index.js';
import { BLOB_PREFIX } from '../bundle/archive.js';
import { ANNOTATION_BUNDLE_DIGEST, ANNOTATION_TITLE, EMPTY_DESCRIPTOR, EMPTY_JSON, MT, type Descriptor, type ImageManifest } from './media-types.js';
import { buildRecipe, type Compression } from './recipe.js';
import { formatReference, parseReference } from './reference.js';
import { mapLimit } from './concurrency.js';

export interface PushOptions extends ClientOptions {
  /** Blobs uploaded at the same time (default 4). */
  concurrency?: number;
}

export interface PushedArtifact {
  path: string;
  artifactType: string;
  digest: string;
}

export interface PushResult {
  reference: string;
  imageDigest: string;
  bundleDigest: string;
  artifacts: PushedArtifact[];
  recipeDigest: string;
  /** How referrers are recorded: the registry's referrers API or the `sha256-<hex>` tag. */
  referrers: 'api' | 'tag';
  uploadedBytes: number;
  skippedBlobs: number;
  /** How `ct fetch` re-makes the file: the tar as is, re-gzipped, or the .ctp stored whole (raw). */
  compression: Compression['kind'];
}

/**
 * `ct push`: uploads the image of a .ctp (blobs, then manifests, the root under the tag), each
 * attestation as an artifact whose `subject` is the image, and the recipe artifact from which
 * `ct fetch` rebuilds the identical .ctp (docs/registry.md).
 */
export async function pushCtp(ctpPath: string, reference: string, opts: PushOptions = {}): Promise<PushResult> {
  const ref = parseReference(reference);
  if (ref.digest) throw new CtError('REFERENCE_INVALID', `push to ${reference}: name a tag (or nothing), not a digest: the digest is the image's`, { reference });
  const client = await RegistryClient.open(ref, opts);
  let prepared: PreparedCtp | undefined;
  try {
    prepared = await prepareCtp(ctpPath);
    const { archive } = prepared;
    const imageDigest = archive.manifest.image_digest;
    const { image } = prepared;
    const rootBytes = archive.file(`${BLOB_PREFIX}${imageDigest.slice(7)}`);
    const graph = {
      root: { digest: imageDigest, mediaType: image.manifest.mediaType ?? MT.imageManifest, bytes: rootBytes },
      blobs: [image.manifest.config, ...image.manifest.layers],
    };
    const manifestDigests = new Set([imageDigest]);

    const compression = await compressionOf(prepared, ctpPath);
    const fh = await open(prepared.tarPath, 'r').catch((e) => Promise.reject(asIoError(e, prepared!.tarPath)));
    let parts;
    try {
      const readSlice = (from: number, to: number): Buffer => {
        const b = Buffer.alloc(to - from);
        // Header and padding slices are small; the file descriptor is read synchronously for them.
        let got = 0;
        while (got < b.length) {
          const n = readSync(fh.fd, b, got, b.length - got, from + got);
          if (n === 0) throw new CtError('IO_ERROR', `${ctpPath}: unexpected end of file`, { path: ctpPath });
          got += n;
        }
        return b;
      };
      parts = buildRecipe(prepared.entries, { digest: prepared.tarDigest, size: prepared.tarSize }, { digest: archive.bundleDigest, size: archive.size }, compression, manifestDigests, readSlice);
    } finally {
      await fh.close();
    }

    // 1. Blobs: every non-manifest segment (image layers and configs, manifest.toml, security/*,
    //    attestations, index.json), plus the artifacts' own blobs.
    let uploadedBytes = 0;
    let skipped = 0;
    const blobJobs = [...parts.sources].filter(([, s]) => s.kind === 'blob');
    const tarPath = prepared.tarPath;
    await mapLimit(blobJobs, opts.concurrency ?? 4, async ([digest, s]) => {
      if (await client.pushBlob({ digest, size: s.size }, { file: tarPath, start: s.start, length: s.size })) uploadedBytes += s.size;
      else skipped++;
    });
    const skeletonDesc = { mediaType: MT.ctpSkeleton, digest: sha256Digest(parts.skeleton), size: parts.skeleton.length };
    const recipeBytes = Buffer.from(JSON.stringify(parts.recipe));
    const recipeDesc = { mediaType: MT.ctpRecipe, digest: sha256Digest(recipeBytes), size: recipeBytes.length, annotations: { [ANNOTATION_TITLE]: 'recipe.json' } };
    await client.pushBlob(EMPTY_DESCRIPTOR, { bytes: EMPTY_JSON });
    await client.pushBlob(skeletonDesc, { bytes: parts.skeleton });
    await client.pushBlob(recipeDesc, { bytes: recipeBytes });
    let rawDesc: Descriptor | undefined;
    if (compression.kind === 'raw') {
      rawDesc = { mediaType: MT.ctpRaw, digest: archive.bundleDigest, size: archive.size, annotations: { [ANNOTATION_TITLE]: 'bundle.ctp' } };
      if (await client.pushBlob(rawDesc, { file: ctpPath, start: 0, length: archive.size })) uploadedBytes += archive.size;
    }

    // 2. The image manifest, under the tag (or its digest), after everything it references.
    await client.putManifest(ref.tag ?? imageDigest, graph.root.bytes, graph.root.mediaType);
    const subject: Descriptor = { mediaType: graph.root.mediaType, digest: imageDigest, size: graph.root.bytes.length };

    // 3. Referrers: one artifact per attestation file, then the recipe.
    let via: 'api' | 'tag' = 'api';
    const attach = async (manifest: ImageManifest): Promise<string> => {
      const bytes = Buffer.from(JSON.stringify(manifest));
      const { digest, subjectAccepted } = await client.putManifest(sha256Digest(bytes), bytes, MT.imageManifest);
      if (!subjectAccepted) {
        via = 'tag';
        await client.addReferrerByTag(imageDigest, { mediaType: MT.imageManifest, digest, size: bytes.length, artifactType: manifest.artifactType, ...(manifest.annotations ? { annotations: manifest.annotations } : {}) });
      }
      return digest;
    };
    const artifacts: PushedArtifact[] = [];
    for (const e of prepared.entries) {
      const artifactType = attestationType(e.name);
      if (!artifactType) continue;
      const layer = { mediaType: artifactType, digest: `sha256:${e.sha256}`, size: e.size, annotations: { [ANNOTATION_TITLE]: e.name } };
      const digest = await attach({ schemaVersion: 2, mediaType: MT.imageManifest, artifactType, config: EMPTY_DESCRIPTOR, layers: [layer], subject, annotations: { [ANNOTATION_TITLE]: e.name } });
      artifacts.push({ path: e.name, artifactType, digest });
    }
    // The recipe lists every non-image file as a layer (titled with its path), so that the
    // registry keeps them and a reader can find manifest.toml or security/* without the recipe.
    const imageBlobs = new Set(graph.blobs.map((b) => b.digest));
    const fileLayers: Descriptor[] = [];
    const listed = new Set<string>();
    for (const e of prepared.entries) {
      const d = `sha256:${e.sha256}`;
      if (e.size === 0 || imageBlobs.has(d) || manifestDigests.has(d) || listed.has(d)) continue;
      listed.add(d);
      fileLayers.push({ mediaType: 'application/octet-stream', digest: d, size: e.size, annotations: { [ANNOTATION_TITLE]: e.name } });
    }
    const recipeManifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MT.imageManifest,
      artifactType: MT.ctpRecipe,
      config: EMPTY_DESCRIPTOR,
      layers: [recipeDesc, skeletonDesc, ...(rawDesc ? [rawDesc] : []), ...fileLayers],
      subject,
      annotations: { [ANNOTATION_BUNDLE_DIGEST]: archive.bundleDigest },
    };
    const recipeDigest = await attach(recipeManifest);
    return {
      reference: formatReference({ ...ref, digest: imageDigest }),
      imageDigest,
      bundleDigest: archive.bundleDigest,
      artifacts,
      recipeDigest,
      referrers: via,
      uploadedBytes,
      skippedBlobs: skipped,
      compression: compression.kind,
    };
  } finally {
    await prepared?.cleanup();
    await client.close();
  }
}

/** The artifactType of an attestation file, or undefined for other files (SPEC §2 layout). */
export function attestationType(name: string): string | undefined {
  if (name === 'attestations/bundle.json') return MT.vcsBundle;
  if (/^attestations\/[^/]+\.sigstore\.json$/.test(name)) return MT.sigstoreBundle;
  return undefined;
}

/**
 * Whether the .ctp can be re-made from its tar: not compressed, or gzip that our deterministic
 * block compressor (src/bundle/gzip.ts) reproduces bit for bit, as `ct pack` writes it. Anything else is stored whole (raw).
 */
async function compressionOf(p: PreparedCtp, path: string): Promise<Compression> {
  if (!p.archive.compressed) return { kind: 'none' };
  const hash = createHash('sha256');
  const gz = new BlockGzip(async (b) => {
    hash.update(b);
  }, GZIP_LEVEL);
  try {
    for await (const c of createReadStream(p.tarPath, { highWaterMark: 1 << 20 })) await gz.write(c as Buffer);
    await gz.end();
  } catch (e) {
    throw asIoError(e, path);
  }
  return `sha256:${hash.digest('hex')}` === p.archive.bundleDigest ? { kind: 'gzip', level: GZIP_LEVEL, blockSize: GZIP_BLOCK } : { kind: 'raw' };
}
