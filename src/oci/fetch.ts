import { createHash, type Hash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CtError, asIoError } from '../core/errors.js';
import { tempPathFor } from '../core/fs.js';
import { BlockGzip } from '../bundle/gzip.js';
import { CTP_LIMITS } from '../bundle/limits.js';
import { RegistryClient, type ClientOptions } from './client.js';
import { ANNOTATION_BUNDLE_DIGEST, MT, type Descriptor, type ImageManifest } from './media-types.js';
import { assertRecipe, type CtpRecipe } from './recipe.js';
import { parseReference } from './reference.js';

export interface FetchOptions extends ClientOptions {
  /** Which pushed .ctp to rebuild when several were pushed for the same image. */
  bundleDigest?: string;
}

export interface FetchResult {
  imageDigest: string;
  bundleDigest: string;
  recipeDigest: string;
  path: string;
  size: number;
}

const MAX_RECIPE = 16 * 1024 * 1024;
const MAX_SKELETON = 64 * 1024 * 1024;

/**
 * `ct fetch`: finds the recipe artifact referring to the image (referrers API or tag fallback),
 * streams skeleton slices and blobs in order into the file, and checks the result against the
 * recipe's tar and bundle digests before renaming it into place.
 */
export async function fetchCtp(reference: string, outPath: string, opts: FetchOptions = {}): Promise<FetchResult> {
  const ref = parseReference(reference);
  const client = await RegistryClient.open(ref, opts);
  try {
    const imageDigest = ref.digest ?? (await client.resolve(ref.tag ?? 'latest'));
    if (!imageDigest) throw new CtError('REGISTRY_NOT_FOUND', `${reference}: no such tag`, { reference });
    const { descriptors } = await client.referrers(imageDigest, MT.ctpRecipe);
    const candidates = opts.bundleDigest ? descriptors.filter((d) => d.annotations?.[ANNOTATION_BUNDLE_DIGEST] === opts.bundleDigest) : descriptors;
    if (candidates.length === 0) {
      throw new CtError('REGISTRY_NOT_FOUND', `${reference}: no .ctp recipe refers to image ${imageDigest}${opts.bundleDigest ? ` with bundle digest ${opts.bundleDigest}` : ''} (was it pushed with ct push?)`, { reference, imageDigest });
    }
    // Several .ctps of one image: the last listed (the newest under the tag scheme) unless chosen.
    const chosen = candidates[candidates.length - 1];
    const rm_ = await client.getManifest(chosen.digest, [MT.imageManifest]);
    const manifest = JSON.parse(rm_.bytes.toString('utf8')) as ImageManifest;
    if (manifest.subject?.digest !== imageDigest || manifest.artifactType !== MT.ctpRecipe || !Array.isArray(manifest.layers)) {
      throw new CtError('REGISTRY_ERROR', `recipe ${chosen.digest} does not refer to ${imageDigest}`, { recipe: chosen.digest });
    }
    const layer = (mt: string): Descriptor | undefined => manifest.layers.find((l) => l.mediaType === mt);
    const recipeLayer = layer(MT.ctpRecipe);
    const skeletonLayer = layer(MT.ctpSkeleton);
    if (!recipeLayer || !skeletonLayer) throw new CtError('REGISTRY_ERROR', `recipe ${chosen.digest} lacks its recipe or skeleton layer`, { recipe: chosen.digest });
    const recipeJson = await client.pullBlobBytes(recipeLayer, MAX_RECIPE);
    let recipe: unknown;
    try {
      recipe = JSON.parse(recipeJson.toString('utf8'));
    } catch {
      throw new CtError('REGISTRY_ERROR', `recipe blob ${recipeLayer.digest} is not JSON`, {});
    }
    assertRecipe(recipe, skeletonLayer.size);
    if (opts.bundleDigest && recipe.bundle.digest !== opts.bundleDigest) throw new CtError('DIGEST_MISMATCH', `recipe is for ${recipe.bundle.digest}, not ${opts.bundleDigest}`, {});
    if (recipe.tar.size > CTP_LIMITS.maxTotalBytes || recipe.bundle.size > CTP_LIMITS.maxTotalBytes) {
      throw new CtError('TAR_LIMIT_EXCEEDED', `recipe describes a .ctp of ${recipe.tar.size} bytes, more than ${CTP_LIMITS.maxTotalBytes}`, {});
    }

    const tmpOut = tempPathFor(outPath);
    try {
      if (recipe.compression.kind === 'raw') {
        const raw = layer(MT.ctpRaw);
        if (!raw || raw.digest !== recipe.bundle.digest || raw.size !== recipe.bundle.size) throw new CtError('REGISTRY_ERROR', `recipe ${chosen.digest}: raw layer missing or not the bundle`, {});
        await client.pullBlob(raw, createWriteStream(tmpOut));
      } else {
        const skeleton = await client.pullBlobBytes(skeletonLayer, MAX_SKELETON);
        await assemble(client, recipe, skeleton, tmpOut);
      }
      await rename(tmpOut, outPath).catch((e) => Promise.reject(asIoError(e, outPath)));
    } catch (e) {
      await rm(tmpOut, { force: true });
      throw e;
    }
    return { imageDigest, bundleDigest: recipe.bundle.digest, recipeDigest: chosen.digest, path: outPath, size: recipe.bundle.size };
  } finally {
    await client.close();
  }
}

/**
 * Streams the .ctp in order in one pass: skeleton slices and blobs (each GET checked for size)
 * flow through a hash of the tar, the block gzip of src/bundle/gzip.ts when the recipe has one, a
 * hash of the output, and into the temp file. The two hashes are the integrity check: they must equal the recipe's
 * tar and bundle digests, so a registry that substitutes any byte of any blob is caught without
 * hashing every blob separately and then the whole file again.
 */
async function assemble(client: RegistryClient, recipe: CtpRecipe, skeleton: Buffer, path: string): Promise<void> {
  async function* tarBytes(): AsyncGenerator<Buffer> {
    for (const s of recipe.segments) {
      if ('bytes' in s) {
        yield skeleton.subarray(s.bytes[0], s.bytes[0] + s.bytes[1]);
        continue;
      }
      if ('manifest' in s) {
        const m = await client.getManifest(s.manifest);
        if (m.bytes.length !== s.size) throw new CtError('DIGEST_MISMATCH', `manifest ${s.manifest} is ${m.bytes.length} bytes, recipe says ${s.size}`, { digest: s.manifest });
        yield m.bytes;
        continue;
      }
      let n = 0;
      for await (const c of await client.openBlob(s.blob)) {
        n += (c as Buffer).length;
        if (n > s.size) throw new CtError('DIGEST_MISMATCH', `blob ${s.blob}: more than the ${s.size} bytes the recipe says`, { digest: s.blob });
        yield c as Buffer;
      }
      if (n !== s.size) throw new CtError('DIGEST_MISMATCH', `blob ${s.blob}: ${n} bytes, the recipe says ${s.size}`, { digest: s.blob });
    }
  }
  const tarHash = hashTap();
  const outHash = createHash('sha256');
  try {
    if (recipe.compression.kind === 'gzip') {
      const fh = await open(path, 'w');
      try {
        const gz = new BlockGzip(async (b) => {
          outHash.update(b);
          await fh.write(b);
        }, recipe.compression.level);
        for await (const c of tarBytes()) {
          tarHash.hash.update(c);
          await gz.write(c);
        }
        await gz.end();
      } finally {
        await fh.close();
      }
    } else {
      await pipeline(Readable.from(tarBytes(), { objectMode: false }), tarHash.stream, createWriteStream(path, { highWaterMark: 1 << 20 }));
    }
  } catch (e) {
    if (e instanceof CtError) throw e;
    throw asIoError(e, path);
  }
  const tar = tarHash.digest();
  if (tar !== recipe.tar.digest) throw new CtError('DIGEST_MISMATCH', `rebuilt tar has digest ${tar}, the recipe says ${recipe.tar.digest}`, { expected: recipe.tar.digest, actual: tar });
  const bundle = recipe.compression.kind === 'gzip' ? `sha256:${outHash.digest('hex')}` : tar;
  if (bundle !== recipe.bundle.digest) throw new CtError('DIGEST_MISMATCH', `rebuilt .ctp has digest ${bundle}, the recipe says ${recipe.bundle.digest}`, { expected: recipe.bundle.digest, actual: bundle });
}

function hashTap(): { stream: Transform; hash: Hash; digest: () => string } {
  const hash = createHash('sha256');
  const stream = new Transform({
    highWaterMark: 1 << 20,
    transform(c: Buffer, _e, cb) {
      hash.update(c);
      cb(null, c);
    },
  });
  return { stream, hash, digest: () => `sha256:${hash.digest('hex')}` };
}
