import { createHash, type Hash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { placeOutput } from '../core/fs.js';
import type { ReadEntry } from 'tar';
import { CtError, asIoError } from '../core/errors.js';
import { CTP_LIMITS } from '../bundle/limits.js';
import { RegistryClient, type ClientOptions } from './client.js';
import { FetchTemps, removeStaleFetchTemps, STALE_TEMP_MS, TEMP_HEARTBEAT_MS } from './fetch-temps.js';
import { BlobDownload, ChunkBudget, copyRange, downloadPart, Frontier, HELD_BYTES, NEAR_LOOKAHEAD_BYTES, NEAR_MS, NEAR_PART_BYTES, PART_BYTES, RangeSupport, type Part } from './blob-parts.js';
import { mapLimit } from './concurrency.js';
import { release } from './slabs.js';
import { ANNOTATION_BUNDLE_DIGEST, MT, type Descriptor } from './media-types.js';
import { registryJsonObject } from './remote-json.js';
import { assertRecipe, type CtpRecipe } from './recipe.js';
import { parseReference } from './reference.js';

export interface FetchOptions extends ClientOptions {
  /** Which pushed .ctp to rebuild when several were pushed for the same image. */
  bundleDigest?: string;
  /** Blob parts downloaded at once (default 4). */
  concurrency?: number;
  /** Bytes per ranged request (default: 8 MiB, 64 MiB from a near registry; smaller in tests). */
  partBytes?: number;
  /** Received bytes kept in memory for the tar hash at most (default 64 MiB; smaller in tests). */
  heldBytes?: number;
  /** A request starts once the tar hash is this close to its first byte (default: no bound, 4 MiB from a near registry). */
  lookaheadBytes?: number;
  /** A registry whose small answers come quicker than this is near (default 10 ms, blob-parts.ts NEAR_MS). */
  nearMs?: number;
  /**
   * Kept up to date with the temporaries the fetch has beside the destination, all regular files:
   * each is added before it is created and taken out once renamed or removed, so a caller that
   * must end the process at once (ct fetch on a signal) can unlink them (src/oci/fetch-temps.ts).
   */
  temporaries?: Set<string>;
  /**
   * A `.<name>.<hex>.tmp` beside the destination unchanged for this long is a killed fetch's, and
   * is removed before this one starts (default 10 minutes, fetch-temps.ts STALE_TEMP_MS).
   */
  staleTempMs?: number;
  /** false: a file that appeared at the destination while fetching is refused (IO_ERROR), not replaced (default true). */
  replace?: boolean;
  /** How often the fetch touches its temporaries so that no other fetch takes them for stale (default 1 minute; keep it well under any fetch's staleTempMs). */
  tempHeartbeatMs?: number;
  /**
   * One deadline for the whole fetch (default none: `ct fetch` has only the per-answer bounds):
   * `baseMs` from its start, plus the time the recipe's bytes take at `minBytesPerSecond` once the
   * recipe says how many there are (docs/registry.md "Time bounds").
   */
  overall?: OverallDeadline;
}

export interface OverallDeadline {
  baseMs: number;
  minBytesPerSecond: number;
  /**
   * The longest the whole fetch may take, whatever the sizes say (default none). The sizes come
   * from the registry's recipe: up to the .ctp limit of 16 GiB, ~73 h at 64 KiB/s.
   */
  maxMs?: number;
}

/**
 * The deploy server's and admission's overall deadline: a registry they fetch from must not be able
 * to hold a fetch (and a fetch slot) for ever. 10 minutes plus 64 KiB/s (512 kbit/s) of the
 * bundle, at most 2 hours: a 256 MiB bundle gets 1 h 18 min, more than it takes on a 1 Mbit/s
 * link; a bundle of more than ~410 MiB needs more than 64 KiB/s to arrive within the 2 hours.
 */
export const SERVER_FETCH_DEADLINE: OverallDeadline = { baseMs: 10 * 60_000, minBytesPerSecond: 64 * 1024, maxMs: 2 * 3600_000 };

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
 * downloads the blobs into their places in the file, and checks the result against the recipe's
 * tar and bundle digests before renaming it into place.
 */
export async function fetchCtp(reference: string, outPath: string, opts: FetchOptions = {}): Promise<FetchResult> {
  const ref = parseReference(reference);
  await removeStaleFetchTemps(outPath, limit(opts.staleTempMs, STALE_TEMP_MS, 0));
  const started = Date.now();
  const client = await RegistryClient.open(ref, { ...opts, deadline: deadlineOf(opts, started, 0) });
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
    // The referrers list is unauthenticated: only its digest is used, and the manifest it names is
    // hashed against it before it is parsed (getImageManifest).
    let t = performance.now();
    const manifest = await client.getImageManifest(chosen.digest);
    // The quicker of two small requests: how near the registry is (blob-parts.ts NEAR_MS).
    let answeredMs = performance.now() - t;
    if (manifest.subject?.digest !== imageDigest || manifest.artifactType !== MT.ctpRecipe) {
      throw new CtError('REGISTRY_ERROR', `recipe ${chosen.digest} does not refer to ${imageDigest}`, { recipe: chosen.digest });
    }
    const layer = (mt: string): Descriptor | undefined => manifest.layers.find((l) => l.mediaType === mt);
    const recipeLayer = layer(MT.ctpRecipe);
    const skeletonLayer = layer(MT.ctpSkeleton);
    if (!recipeLayer || !skeletonLayer) throw new CtError('REGISTRY_ERROR', `recipe ${chosen.digest} lacks its recipe or skeleton layer`, { recipe: chosen.digest });
    t = performance.now();
    const recipeJson = await client.pullBlobBytes(recipeLayer, MAX_RECIPE);
    answeredMs = Math.min(answeredMs, performance.now() - t);
    // Hashed against the manifest's descriptor while it arrived (pullBlobBytes); parsed depth-bounded.
    const recipe: unknown = registryJsonObject(recipeJson, `recipe blob ${recipeLayer.digest}`);
    assertRecipe(recipe, skeletonLayer.size);
    if (opts.bundleDigest && recipe.bundle.digest !== opts.bundleDigest) throw new CtError('DIGEST_MISMATCH', `recipe is for ${recipe.bundle.digest}, not ${opts.bundleDigest}`, {});
    if (recipe.tar.size > CTP_LIMITS.maxTotalBytes || recipe.bundle.size > CTP_LIMITS.maxTotalBytes) {
      throw new CtError('TAR_LIMIT_EXCEEDED', `recipe describes a .ctp of ${recipe.tar.size} bytes, more than ${CTP_LIMITS.maxTotalBytes}`, {});
    }
    // Now the bytes to come are known (and bounded by the limit just checked): the deadline grows by them.
    client.setDeadline(deadlineOf(opts, started, Math.max(recipe.tar.size, recipe.bundle.size)));

    const temps = new FetchTemps(outPath, opts.temporaries, limit(opts.tempHeartbeatMs, TEMP_HEARTBEAT_MS, 1));
    let tmpOut: string | undefined;
    let toml: Buffer | undefined;
    try {
      tmpOut = temps.make();
      if (recipe.compression.kind === 'raw') {
        const raw = layer(MT.ctpRaw);
        if (!raw || raw.digest !== recipe.bundle.digest || raw.size !== recipe.bundle.size) throw new CtError('REGISTRY_ERROR', `recipe ${chosen.digest}: raw layer missing or not the bundle`, {});
        const fh = await open(tmpOut, 'r+').catch((e) => Promise.reject(asIoError(e, tmpOut!)));
        try {
          await client.pullBlob(raw, fh.createWriteStream());
        } finally {
          // The stream closes the handle once it has run; not when pullBlob failed before piping.
          await fh.close();
        }
        const { openCtp } = await import('../bundle/read.js');
        toml = (await openCtp(tmpOut)).file('manifest.toml');
      } else {
        const skeleton = await client.pullBlobBytes(skeletonLayer, MAX_SKELETON);
        const near = answeredMs < (opts.nearMs ?? NEAR_MS);
        toml = await assemble(client, recipe, skeleton, tmpOut, temps, {
          concurrency: limit(opts.concurrency, 4, 1),
          partBytes: limit(opts.partBytes, near ? NEAR_PART_BYTES : PART_BYTES, 1),
          heldBytes: limit(opts.heldBytes, HELD_BYTES, 0),
          lookaheadBytes: limit(opts.lookaheadBytes, near ? NEAR_LOOKAHEAD_BYTES : Infinity, 0),
        });
      }
      // The recipe came from an unauthenticated referrers list: the .ctp it rebuilt must be the one
      // of the image asked for, or a registry could hand out another (older) signed bundle.
      const { parseManifest } = await later.manifest();
      const named = parseManifest(toml ?? Buffer.alloc(0), 'rebuilt .ctp: manifest.toml').image_digest;
      if (named !== imageDigest) {
        throw new CtError('DIGEST_MISMATCH', `the rebuilt .ctp is for image ${named}, not ${imageDigest} (${reference})`, { expected: imageDigest, actual: named });
      }
      await placeOutput(tmpOut, outPath, opts.replace !== false);
      temps.forget(tmpOut);
    } catch (e) {
      if (tmpOut) await temps.remove(tmpOut);
      throw e;
    } finally {
      temps.stop();
    }
    return { imageDigest, bundleDigest: recipe.bundle.digest, recipeDigest: chosen.digest, path: outPath, size: recipe.bundle.size };
  } finally {
    await client.close();
  }
}

/**
 * The overall deadline (epoch ms) for a fetch started at `started` that is to receive `bytes`:
 * `baseMs` plus the bytes at `minBytesPerSecond`, never past `maxMs` (the bytes are the
 * registry's word), nor past the caller's own `deadline`.
 */
export function deadlineOf(opts: Pick<FetchOptions, 'overall' | 'deadline'>, started: number, bytes: number): number | undefined {
  if (!opts.overall) return opts.deadline;
  const { baseMs, minBytesPerSecond, maxMs } = opts.overall;
  const at = started + Math.min(baseMs + (bytes / minBytesPerSecond) * 1000, maxMs ?? Infinity);
  return opts.deadline === undefined ? at : Math.min(at, opts.deadline);
}

/**
 * A caller's limit, at least `min`; unset or NaN takes the default (Math.max passes NaN through: a
 * NaN look-ahead never opened its gate and the fetch waited for ever).
 */
function limit(value: number | undefined, fallback: number, min: number): number {
  return value === undefined || Number.isNaN(value) ? fallback : Math.max(min, value);
}

/**
 * Rebuilds the .ctp. Blobs are downloaded in parts of `partBytes`, several at a time and in file
 * order (src/oci/blob-parts.ts), each straight to its offset in the tar file (length checked as it
 * streams); skeleton slices are written in place. Meanwhile one reader walks the tar in order,
 * waiting for each piece to land, and feeds it to a sha256 of the tar (and, for `gzip` recipes, to
 * the block gzip of src/bundle/gzip.ts and a sha256 of its output). Those two digests must equal
 * the recipe's: a registry that substitutes any byte of any blob is caught, every byte is hashed
 * once, and the downloads run in parallel.
 */
async function assemble(client: RegistryClient, recipe: CtpRecipe, skeleton: Buffer, path: string, temps: FetchTemps, limits: { concurrency: number; partBytes: number; heldBytes: number; lookaheadBytes: number }): Promise<Buffer | undefined> {
  const { concurrency, partBytes, heldBytes, lookaheadBytes } = limits;
  const gzip = recipe.compression.kind === 'gzip' ? recipe.compression : undefined;
  // The gzip path's uncompressed tar: a second temporary beside the destination, which is read
  // and written only through `fh`. Unlinked as soon as it is open, it has no name to leave behind:
  // its blocks are freed when the handle closes, however the process ends (SIGKILL included).
  // Only where an open file cannot be unlinked does it keep its name until it is closed.
  const tarPath = gzip ? temps.make() : path;
  const fh = await open(tarPath, 'r+').catch(async (e) => {
    if (gzip) await temps.remove(tarPath);
    throw asIoError(e, tarPath);
  });
  if (gzip) await temps.remove(tarPath);
  // The file in order: each piece's offset, size, when it has landed and (for downloaded parts)
  // how much of it is on disk, so the hash can follow a part while it still arrives.
  const pieces: Piece[] = [];
  const first = new Map<string, BlobDownload>();
  let downloads: Promise<void> | undefined;
  let manifestToml: Buffer | undefined;
  const frontier = new Frontier();
  // Each download waits until the hash is within the look-ahead of its first byte.
  const gated = (off: number, job: () => Promise<void>) => () => frontier.reach(off - lookaheadBytes).then(job);
  try {
    const jobs: (() => Promise<void>)[] = [];
    const ranges = new RangeSupport();
    // Only the plain tar is hashed from memory; the gzip path reads the file back in order anyway.
    const budget = gzip ? undefined : new ChunkBudget(heldBytes);
    let pos = 0;
    for (const s of recipe.segments) {
      const at = pos;
      if ('bytes' in s) {
        await fh.write(skeleton, s.bytes[0], s.bytes[1], at);
        pieces.push({ off: at, size: s.bytes[1], landed: Promise.resolve() });
        pos += s.bytes[1];
        continue;
      }
      const digest = 'blob' in s ? s.blob : s.manifest;
      const seen = first.get(digest);
      if (seen) {
        // A repeated blob or manifest is copied from where it first landed.
        const landed = Promise.all(seen.parts.map((p) => p.done.promise)).then(() => copyRange(fh, seen.at, at, s.size));
        landed.catch(() => undefined); // observed below, in order
        pieces.push({ off: at, size: s.size, landed });
      } else if ('blob' in s) {
        const blob = new BlobDownload(s.blob, s.size, at, partBytes, budget);
        first.set(digest, blob);
        for (const [i, p] of blob.parts.entries()) {
          pieces.push({ off: at + p.start, size: p.size, landed: p.done.promise, part: p });
          jobs.push(gated(at + p.start, () => downloadPart(client, blob, i, fh, ranges)));
        }
      } else {
        const blob = new BlobDownload(s.manifest, s.size, at, Math.max(1, s.size));
        first.set(digest, blob);
        const p = blob.parts[0];
        pieces.push({ off: at, size: s.size, landed: p.done.promise });
        jobs.push(gated(at, () => manifestTo(client, s.manifest, s.size, fh, at).then(p.done.resolve, (e) => (p.done.reject(e), Promise.reject(e)))));
      }
      pos += s.size;
    }
    downloads = mapLimit(jobs, concurrency, (job) => job());
    later.preload();
    // A failed download stops the others from starting: their parts fail now, so the in-order
    // reader below never waits for bytes that will not come.
    downloads.catch((e) => {
      frontier.fail(e);
      for (const b of first.values()) for (const p of b.parts) p.done.reject(e);
    });
    const outHash = createHash('sha256');
    let tar: string;
    if (gzip) {
      // The compressor needs the bytes in order on this thread anyway: hash and probe them here.
      const tarHash = createHash('sha256');
      const out = await open(path, 'r+').catch((e) => Promise.reject(asIoError(e, path)));
      try {
        const { BlockGzip } = await later.gzip();
        const gz = new BlockGzip(async (b) => {
          outHash.update(b);
          await out.write(b);
        }, gzip.level);
        const probe = manifestProbe(await later.tar());
        await readInOrder(fh, tarPath, pieces, frontier, async (chunk) => {
          tarHash.update(chunk);
          probe.write(chunk);
          await gz.write(chunk);
        });
        await gz.end();
        await downloads;
        manifestToml = await probe.end();
      } finally {
        await out.close();
      }
      tar = `sha256:${tarHash.digest('hex')}`;
    } else {
      // The downloaded bytes are hashed from the buffers that were written, in file order, as the
      // frontier of contiguous landed bytes advances (no second read of the file; SHA-256 of a
      // 64 KiB chunk costs this thread ~30 us). Skeleton slices, manifests, repeated blobs and any
      // part the memory bound made drop its bytes are read back once they have landed.
      const tarHash = createHash('sha256');
      const readBack = readBackInto(fh, tarPath, tarHash);
      for (const { off, size, landed, part: p } of pieces) {
        for (let hashed = 0; p && hashed < size; ) {
          if (p.written === hashed) {
            if (p.finished) break;
            await Promise.race([p.changed(), landed]);
            continue;
          }
          const upto = p.written;
          const bytes = p.take();
          if (bytes) {
            let n = 0;
            for (const b of bytes) {
              tarHash.update(b);
              n += b.length;
              release(b);
            }
            if (n !== upto - hashed) throw new CtError('IO_ERROR', `${tarPath}: ${n} bytes received for ${upto - hashed} written at ${off + hashed}`, { path: tarPath });
          } else await readBack(off + hashed, upto - hashed);
          hashed = upto;
          frontier.advance(off + hashed);
        }
        await landed;
        if (!p) await readBack(off, size);
        frontier.advance(off + size);
      }
      await downloads;
      tar = `sha256:${tarHash.digest('hex')}`;
      manifestToml = await findManifestToml(fh, await later.tar());
    }
    if (tar !== recipe.tar.digest) throw new CtError('DIGEST_MISMATCH', `rebuilt tar has digest ${tar}, the recipe says ${recipe.tar.digest}`, { expected: recipe.tar.digest, actual: tar });
    const bundle = gzip ? `sha256:${outHash.digest('hex')}` : tar;
    if (bundle !== recipe.bundle.digest) throw new CtError('DIGEST_MISMATCH', `rebuilt .ctp has digest ${bundle}, the recipe says ${recipe.bundle.digest}`, { expected: recipe.bundle.digest, actual: bundle });
    return manifestToml;
  } catch (e) {
    if (e instanceof CtError) throw e;
    throw asIoError(e, path);
  } finally {
    // No download may still be writing when the file is closed or removed: mapLimit settles only
    // after the running jobs have; parts it never started are failed here so nothing waits on them.
    const notStarted = new CtError('REGISTRY_ERROR', 'download not started', {});
    frontier.fail(notStarted);
    await downloads?.catch(() => undefined);
    for (const b of first.values()) for (const p of b.parts) p.done.reject(notStarted);
    await Promise.allSettled(pieces.map((p) => p.landed));
    await fh.close();
    if (gzip) await temps.remove(tarPath);
  }
}

/** A stretch of the rebuilt tar: skeleton bytes, a downloaded part, or a copied repeat. */
interface Piece {
  off: number;
  size: number;
  landed: Promise<void>;
  part?: Part;
}

/** Reads the tar back in order as its pieces land (the gzip path compresses it on this thread). */
async function readInOrder(fh: FileHandle, path: string, pieces: Piece[], frontier: Frontier, each: (chunk: Buffer) => Promise<void>): Promise<void> {
  for (const { off, size, landed } of pieces) {
    await landed;
    // A fresh buffer per read (no `reuse`): the tar parser may keep slices of what it is given.
    let at = off;
    await readRange(fh, path, off, size, async (chunk) => {
      await each(chunk);
      frontier.advance((at += chunk.length));
    });
  }
}

/** Hashes landed ranges of the file read back from it (pieces whose bytes were not kept). */
function readBackInto(fh: FileHandle, path: string, hash: Hash): (off: number, size: number) => Promise<void> {
  let buf: Buffer | undefined;
  return (off, size) => readRange(fh, path, off, size, (chunk) => void hash.update(chunk), (buf ??= Buffer.allocUnsafe(1 << 20)));
}

/**
 * Bytes [off, off + size) of the file, in reads of at most 1 MiB, each handed to `each` before the
 * next; into `reuse` when given (the caller keeps nothing), else into a fresh buffer per read.
 */
async function readRange(fh: FileHandle, path: string, off: number, size: number, each: (chunk: Buffer) => void | Promise<void>, reuse?: Buffer): Promise<void> {
  for (let done = 0; done < size; ) {
    const buf = reuse ?? Buffer.allocUnsafe(Math.min(1 << 20, size - done));
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - done), off + done);
    if (bytesRead === 0) throw new CtError('IO_ERROR', `${path}: short read at ${off + done}`, { path });
    await each(buf.subarray(0, bytesRead));
    done += bytesRead;
  }
}

/**
 * Reads the rebuilt tar from its start until `manifest.toml` has gone by (ct writes it before the
 * layout blobs, so this is a few kilobytes; another writer's order may cost a full read).
 */
async function findManifestToml(fh: FileHandle, tar: TarLib): Promise<Buffer | undefined> {
  const probe = manifestProbe(tar);
  for (let off = 0; ; ) {
    const buf = Buffer.allocUnsafe(64 * 1024);
    const { bytesRead } = await fh.read(buf, 0, buf.length, off);
    if (bytesRead === 0) return probe.end();
    probe.write(buf.subarray(0, bytesRead));
    off += bytesRead;
    if (probe.found()) return probe.found();
  }
}

type TarLib = typeof import('tar');

/**
 * Modules needed only after the downloads (~50 ms of start-up before the first request when
 * imported up front): `preload` starts loading them once the parts have been asked for, while
 * this thread mostly waits for bytes; each getter then awaits the same import.
 */
const later = {
  tar: (): Promise<TarLib> => import('tar'),
  manifest: () => import('../bundle/manifest.js'),
  gzip: () => import('../bundle/gzip.js'),
  preload(): void {
    // Failures surface where the module is awaited; here they are only kept from going unhandled.
    for (const p of [later.tar(), later.manifest()]) p.catch(() => undefined);
  },
};

/**
 * Finds `manifest.toml` in the tar as it streams past, with the same parser the bundle reader
 * uses (pax names included), without hashing or keeping anything else.
 */
function manifestProbe(tar: TarLib): { write(chunk: Buffer): void; found(): Buffer | undefined; end(): Promise<Buffer | undefined> } {
  const parser = new tar.Parser({ strict: true });
  let found: Buffer | undefined;
  let count = 0;
  let failure: unknown;
  parser.on('error', (e: Error) => (failure ??= e));
  parser.on('entry', (e: ReadEntry) => {
    if (e.path !== 'manifest.toml' && e.path !== './manifest.toml') return void e.resume();
    count++;
    const parts: Buffer[] = [];
    e.on('data', (c: Buffer) => parts.push(c));
    e.on('end', () => (found = Buffer.concat(parts)));
  });
  const ended = new Promise<void>((resolve) => parser.on('end', () => resolve()));
  return {
    write: (chunk) => void parser.write(chunk),
    found: () => (count === 1 ? found : undefined),
    async end() {
      parser.end();
      await ended;
      if (failure || count !== 1) throw new CtError('MALFORMED_BUNDLE', `rebuilt .ctp: ${failure ? `not a readable tar (${(failure as Error).message})` : `${count} manifest.toml entries`}`, {});
      return found;
    },
  };
}

async function manifestTo(client: RegistryClient, digest: string, size: number, fh: FileHandle, at: number): Promise<void> {
  const m = await client.getManifest(digest);
  if (m.bytes.length !== size) throw new CtError('DIGEST_MISMATCH', `manifest ${digest} is ${m.bytes.length} bytes, the recipe says ${size}`, { digest });
  await fh.write(m.bytes, 0, m.bytes.length, at);
}
