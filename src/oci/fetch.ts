import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, open, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CtError, asIoError } from '../core/errors.js';
import { tempPathFor } from '../core/fs.js';
import { deterministicGzip } from '../bundle/gzip.js';
import { CTP_LIMITS } from '../bundle/limits.js';
import { RegistryClient, type ClientOptions } from './client.js';
import { mapLimit } from './concurrency.js';
import { ANNOTATION_BUNDLE_DIGEST, MT, type Descriptor, type ImageManifest } from './media-types.js';
import { assertRecipe, type CtpRecipe } from './recipe.js';
import { parseReference } from './reference.js';

export interface FetchOptions extends ClientOptions {
  /** Which pushed .ctp to rebuild when several were pushed for the same image. */
  bundleDigest?: string;
  concurrency?: number;
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
 * pulls every blob by digest (each checked as it streams) into its place in the tar, and checks
 * the result against the recipe's tar and bundle digests before renaming it into place.
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
        if (recipe.compression.kind === 'none') {
          await assembleTar(client, recipe, skeleton, tmpOut, opts.concurrency ?? 4);
        } else {
          const dir = await mkdtemp(join(tmpdir(), 'ct-fetch-'));
          try {
            const tarPath = join(dir, 'bundle.tar');
            await assembleTar(client, recipe, skeleton, tarPath, opts.concurrency ?? 4);
            const got = await copyHashing(tarPath, tmpOut, deterministicGzip(recipe.compression.level));
            if (got !== recipe.bundle.digest) throw new CtError('DIGEST_MISMATCH', `recompressed .ctp has digest ${got}, expected ${recipe.bundle.digest}`, { expected: recipe.bundle.digest, actual: got });
          } finally {
            await rm(dir, { recursive: true, force: true });
          }
        }
      }
      const final = await fileDigest(tmpOut);
      if (final !== recipe.bundle.digest) throw new CtError('DIGEST_MISMATCH', `rebuilt .ctp has digest ${final}, expected ${recipe.bundle.digest}`, { expected: recipe.bundle.digest, actual: final });
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
 * Writes the tar: skeleton slices in place, each distinct blob downloaded once straight to its
 * offset (several at a time), repeated ones copied from their first place, then the whole file
 * checked against the recipe's tar digest.
 */
async function assembleTar(client: RegistryClient, recipe: CtpRecipe, skeleton: Buffer, path: string, concurrency: number): Promise<void> {
  const fh = await open(path, 'w').catch((e) => Promise.reject(asIoError(e, path)));
  const first = new Map<string, { pos: number; size: number; kind: 'blob' | 'manifest' }>();
  const repeats: { from: number; to: number; size: number }[] = [];
  try {
    await fh.truncate(recipe.tar.size);
    let pos = 0;
    for (const s of recipe.segments) {
      if ('bytes' in s) {
        await fh.write(skeleton, s.bytes[0], s.bytes[1], pos);
        pos += s.bytes[1];
        continue;
      }
      const digest = 'blob' in s ? s.blob : s.manifest;
      const seen = first.get(digest);
      if (seen) {
        if (seen.size !== s.size) throw new CtError('REGISTRY_ERROR', `recipe gives ${digest} two sizes`, { digest });
        repeats.push({ from: seen.pos, to: pos, size: s.size });
      } else first.set(digest, { pos, size: s.size, kind: 'blob' in s ? 'blob' : 'manifest' });
      pos += s.size;
    }
  } finally {
    await fh.close();
  }
  await mapLimit([...first], concurrency, async ([digest, at]) => {
    if (at.kind === 'manifest') {
      const m = await client.getManifest(digest);
      if (m.bytes.length !== at.size) throw new CtError('DIGEST_MISMATCH', `manifest ${digest} is ${m.bytes.length} bytes, recipe says ${at.size}`, { digest });
      const h = await open(path, 'r+');
      try {
        await h.write(m.bytes, 0, m.bytes.length, at.pos);
      } finally {
        await h.close();
      }
      return;
    }
    await client.pullBlob({ digest, size: at.size }, createWriteStream(path, { flags: 'r+', start: at.pos, highWaterMark: 1 << 20 }));
  });
  if (repeats.length > 0) {
    const h = await open(path, 'r+');
    try {
      for (const r of repeats) {
        const buf = Buffer.alloc(Math.min(r.size, 1 << 20));
        for (let done = 0; done < r.size; ) {
          const n = Math.min(buf.length, r.size - done);
          await h.read(buf, 0, n, r.from + done);
          await h.write(buf, 0, n, r.to + done);
          done += n;
        }
      }
    } finally {
      await h.close();
    }
  }
  const got = await fileDigest(path);
  if (got !== recipe.tar.digest) throw new CtError('DIGEST_MISMATCH', `rebuilt tar has digest ${got}, expected ${recipe.tar.digest}`, { expected: recipe.tar.digest, actual: got });
}

async function fileDigest(path: string): Promise<string> {
  const hash = createHash('sha256');
  try {
    for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(c as Buffer);
  } catch (e) {
    throw asIoError(e, path);
  }
  return `sha256:${hash.digest('hex')}`;
}

async function copyHashing(from: string, to: string, stages: [Transform, Transform]): Promise<string> {
  const hash = createHash('sha256');
  const tap = new Transform({
    transform(c: Buffer, _e, cb) {
      hash.update(c);
      cb(null, c);
    },
  });
  try {
    await pipeline(createReadStream(from, { highWaterMark: 1 << 20 }), stages[0], stages[1], tap, createWriteStream(to));
  } catch (e) {
    throw asIoError(e, to);
  }
  return `sha256:${hash.digest('hex')}`;
}
