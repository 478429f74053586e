import { CtError } from '../core/errors.js';
import { isDigest } from '../core/digest.js';
import { GZIP_BLOCK } from '../bundle/gzip.js';
import type { IndexedEntry } from './ctp-index.js';

/**
 * The recipe `ct fetch` follows to rebuild a .ctp byte for byte (docs/registry.md): the
 * uncompressed tar is a sequence of segments, each either a slice of the "skeleton" (tar headers,
 * padding, end-of-archive blocks, empty files) or the whole content of a blob or manifest stored in
 * the registry by digest. Storing the tar's own header bytes instead of re-packing means any valid
 * .ctp, whoever wrote it, comes back identical.
 */
export type Segment = { bytes: [number, number] } | { blob: string; size: number } | { manifest: string; size: number };

/** gzip = the block compressor of src/bundle/gzip.ts (what `ct pack --gzip` writes) at this level and block size. */
export type Compression = { kind: 'none' } | { kind: 'gzip'; level: number; blockSize: number } | { kind: 'raw' };

export interface CtpRecipe {
  schemaVersion: 1;
  mediaType: 'application/vnd.cerro-torre.ctp.recipe.v1+json';
  bundle: { digest: string; size: number };
  tar: { digest: string; size: number };
  /** How the tar becomes the .ctp: as is, gzip at a zlib level, or (raw) the .ctp is a blob itself. */
  compression: Compression;
  segments: Segment[];
}

export interface RecipeParts {
  recipe: CtpRecipe;
  skeleton: Buffer;
  /** Where each blob/manifest segment's bytes sit in the tar file, to upload them from. */
  sources: Map<string, { start: number; size: number; kind: 'blob' | 'manifest' }>;
}

/**
 * Cuts an indexed tar into segments. Every regular file with content becomes a blob segment
 * (manifests of the image graph are `manifest` segments, since a registry stores those apart);
 * the rest of the bytes go to the skeleton.
 */
export function buildRecipe(
  entries: IndexedEntry[],
  tar: { digest: string; size: number },
  bundle: { digest: string; size: number },
  compression: Compression,
  manifestDigests: Set<string>,
  /** Reads bytes [from, to) of the uncompressed tar (headers and padding: small reads). */
  read: (from: number, to: number) => Buffer,
): RecipeParts {
  const segments: Segment[] = [];
  const skeletonParts: Buffer[] = [];
  let skeletonLen = 0;
  const sources = new Map<string, { start: number; size: number; kind: 'blob' | 'manifest' }>();
  const skel = (from: number, to: number) => {
    if (to <= from) return;
    const last = segments[segments.length - 1];
    if (last && 'bytes' in last && last.bytes[0] + last.bytes[1] === skeletonLen) last.bytes[1] += to - from;
    else segments.push({ bytes: [skeletonLen, to - from] });
    skeletonParts.push(read(from, to));
    skeletonLen += to - from;
  };
  let pos = 0;
  for (const e of entries) {
    if (e.size === 0) continue;
    skel(pos, e.dataOffset);
    const digest = `sha256:${e.sha256}`;
    const kind = manifestDigests.has(digest) ? 'manifest' : 'blob';
    segments.push(kind === 'manifest' ? { manifest: digest, size: e.size } : { blob: digest, size: e.size });
    if (!sources.has(digest)) sources.set(digest, { start: e.dataOffset, size: e.size, kind });
    pos = e.dataOffset + e.size;
  }
  skel(pos, tar.size);
  return {
    recipe: { schemaVersion: 1, mediaType: 'application/vnd.cerro-torre.ctp.recipe.v1+json', bundle, tar, compression, segments },
    skeleton: Buffer.concat(skeletonParts),
    sources,
  };
}

const MAX_SEGMENTS = 100_000;

/** Structural check of a recipe from the registry (untrusted); every field the rebuild uses. */
export function assertRecipe(v: unknown, skeletonSize: number): asserts v is CtpRecipe {
  const fail = (what: string): never => {
    throw new CtError('REGISTRY_ERROR', `ctp recipe: ${what}`, {});
  };
  const r = v as Partial<CtpRecipe> | null;
  if (!r || typeof r !== 'object') fail('not an object');
  if (r!.schemaVersion !== 1) fail('schemaVersion must be 1');
  const sized = (o: unknown, f: string) => {
    const x = o as { digest?: unknown; size?: unknown } | null;
    if (!x || !isDigest(x.digest) || !Number.isSafeInteger(x.size) || (x.size as number) < 0) fail(`${f} needs a sha256 digest and a size`);
  };
  sized(r!.bundle, 'bundle');
  sized(r!.tar, 'tar');
  const c = r!.compression as Compression | undefined;
  if (!c || !['none', 'gzip', 'raw'].includes(c.kind)) fail('compression.kind must be none, gzip or raw');
  if (c!.kind === 'gzip' && (!Number.isInteger(c!.level) || c!.level < 0 || c!.level > 9)) fail('compression.level must be 0-9');
  if (c!.kind === 'gzip' && c!.blockSize !== GZIP_BLOCK) fail(`compression.blockSize ${String(c!.blockSize)} is not supported (only ${GZIP_BLOCK})`);
  if (c!.kind === 'none' && r!.tar!.digest !== r!.bundle!.digest) fail('an uncompressed .ctp is its tar: tar and bundle digests must be equal');
  if (!Array.isArray(r!.segments) || r!.segments.length > MAX_SEGMENTS) fail(`segments must be an array of at most ${MAX_SEGMENTS}`);
  let total = 0;
  for (const [i, s] of r!.segments!.entries()) {
    if (s && 'bytes' in s) {
      const [off, len] = (Array.isArray(s.bytes) ? s.bytes : [-1, -1]) as number[];
      if (!Number.isSafeInteger(off) || !Number.isSafeInteger(len) || off < 0 || len <= 0 || off + len > skeletonSize) fail(`segments[${i}] slice outside the skeleton`);
      total += len;
    } else if (s && ('blob' in s || 'manifest' in s)) {
      const d = 'blob' in s ? s.blob : s.manifest;
      if (!isDigest(d) || !Number.isSafeInteger(s.size) || s.size <= 0) fail(`segments[${i}] needs a sha256 digest and a positive size`);
      total += s.size;
    } else fail(`segments[${i}] is neither a slice nor a blob`);
  }
  if (c!.kind !== 'raw' && total !== r!.tar!.size) fail(`segments add up to ${total} bytes, tar.size says ${r!.tar!.size}`);
}
