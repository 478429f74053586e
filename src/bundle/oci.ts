import { CtError } from '../core/errors.js';
import { MAX_JSON_DEPTH, jsonDepthExceeds } from '../core/json.js';
import { isDigest } from '../core/digest.js';

/** OCI media types this code reads and writes. */
export const MT = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  layerTar: 'application/vnd.oci.image.layer.v1.tar',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayerTar: 'application/vnd.docker.image.rootfs.diff.tar',
} as const;

export const OCI_LAYOUT_FILE = '{"imageLayoutVersion":"1.0.0"}';

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
}

/** The selected image of a layout, after checking. */
export interface OciImage {
  manifestDigest: string;
  manifestSize: number;
  manifest: ImageManifest;
  config: Record<string, unknown>;
  configDigest: string;
  layers: Descriptor[];
  diffIds: string[];
  platform?: Platform;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function invalid(where: string, msg: string, path?: string): CtError {
  return new CtError('OCI_LAYOUT_INVALID', `${where}: ${msg}`, { where, ...(path ? { path } : {}) });
}

export function checkDescriptor(v: unknown, where: string): Descriptor {
  if (!isObj(v)) throw invalid(where, 'descriptor is not an object');
  if (typeof v.mediaType !== 'string' || v.mediaType === '') throw invalid(where, 'descriptor mediaType missing');
  if (!isDigest(v.digest)) throw invalid(where, `descriptor digest ${JSON.stringify(v.digest)} is not sha256:<64 hex>`);
  if (typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0) throw invalid(where, 'descriptor size must be a non-negative integer');
  return v as unknown as Descriptor;
}

export function parseIndex(data: Buffer, where: string): ImageIndex {
  let v: unknown;
  if (jsonDepthExceeds(data)) throw invalid(where, `JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
  try {
    v = JSON.parse(data.toString('utf8'));
  } catch (e) {
    throw invalid(where, `not valid JSON (${(e as Error).message.slice(0, 200)})`);
  }
  if (!isObj(v) || v.schemaVersion !== 2 || !Array.isArray(v.manifests)) throw invalid(where, 'not an OCI image index (schemaVersion 2 with manifests[])');
  v.manifests.forEach((d, i) => checkDescriptor(d, `${where}: manifests[${i}]`));
  return v as unknown as ImageIndex;
}

export function parseImageManifest(data: Buffer, where: string): ImageManifest {
  let v: unknown;
  if (jsonDepthExceeds(data)) throw invalid(where, `JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
  try {
    v = JSON.parse(data.toString('utf8'));
  } catch (e) {
    throw invalid(where, `not valid JSON (${(e as Error).message.slice(0, 200)})`);
  }
  if (!isObj(v) || v.schemaVersion !== 2 || !Array.isArray(v.layers)) throw invalid(where, 'not an image manifest (schemaVersion 2 with config and layers[])');
  if (v.mediaType !== undefined && v.mediaType !== MT.manifest && v.mediaType !== MT.dockerManifest) throw invalid(where, `unexpected mediaType ${String(v.mediaType)}`);
  checkDescriptor(v.config, `${where}: config`);
  v.layers.forEach((d, i) => checkDescriptor(d, `${where}: layers[${i}]`));
  return v as unknown as ImageManifest;
}

const isManifestType = (t: string): boolean => t === MT.manifest || t === MT.dockerManifest;
const isIndexType = (t: string): boolean => t === MT.index || t === MT.dockerList;

/**
 * Picks the one image manifest an index designates: the only image manifest (following one level
 * of nested index), or the one matching `platform`. Anything ambiguous is OCI_LAYOUT_INVALID:
 * a bundle must say which image it means.
 */
export function selectManifest(index: ImageIndex, getBlob: (d: Descriptor, where: string) => Buffer, where: string, platform?: Platform): Descriptor {
  const candidates: Descriptor[] = [];
  for (const [i, d] of index.manifests.entries()) {
    if (isManifestType(d.mediaType)) candidates.push(d);
    else if (isIndexType(d.mediaType)) {
      const nested = parseIndex(getBlob(d, `${where}: manifests[${i}]`), `${where}: nested index ${d.digest}`);
      for (const n of nested.manifests) if (isManifestType(n.mediaType)) candidates.push(n);
    }
  }
  const matching = platform
    ? candidates.filter((d) => d.platform?.os === platform.os && d.platform?.architecture === platform.architecture && (!platform.variant || d.platform?.variant === platform.variant))
    : candidates;
  if (matching.length === 1) return matching[0];
  if (matching.length === 0) throw invalid(where, platform ? `no image manifest for ${platform.os}/${platform.architecture}` : 'no image manifest in index.json');
  throw invalid(where, `${matching.length} image manifests in index.json; choose one by platform`);
}

/** Checks an image config enough to apply it: rootfs.diff_ids match the layer count. */
export function parseConfig(data: Buffer, where: string, layerCount: number): { config: Record<string, unknown>; diffIds: string[] } {
  let v: unknown;
  if (jsonDepthExceeds(data)) throw invalid(where, `JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
  try {
    v = JSON.parse(data.toString('utf8'));
  } catch (e) {
    throw invalid(where, `not valid JSON (${(e as Error).message.slice(0, 200)})`);
  }
  if (!isObj(v)) throw invalid(where, 'config is not an object');
  const rootfs = v.rootfs;
  if (!isObj(rootfs) || !Array.isArray(rootfs.diff_ids) || !rootfs.diff_ids.every(isDigest)) throw invalid(where, 'rootfs.diff_ids missing or not digests');
  if (rootfs.diff_ids.length !== layerCount) throw invalid(where, `rootfs.diff_ids has ${rootfs.diff_ids.length} entries for ${layerCount} layers`);
  return { config: v, diffIds: rootfs.diff_ids as string[] };
}

/** True for layer media types compressed with gzip (decided by type; readers still sniff bytes). */
export function isGzipLayer(mediaType: string): boolean {
  return mediaType.endsWith('+gzip') || mediaType.endsWith('.tar.gzip');
}
