import { CtError } from '../core/errors.js';
import { BLOB_PREFIX, type CtpArchive } from './archive.js';
import type { CtpManifest } from './manifest.js';
import { parseJson } from '../core/json.js';
import { parseConfig, parseImageManifest, parseIndex, selectManifest, type Descriptor, type OciImage, type Platform } from './oci.js';

const HEX64 = /^[0-9a-f]{64}$/;

function blobName(d: Descriptor): string {
  return `${BLOB_PREFIX}${d.digest.slice('sha256:'.length)}`;
}

/**
 * Verifies the OCI layout inside an opened `.ctp` using the digests recorded while it streamed
 * (no second read): every blob hashes to its name, index.json designates exactly one image
 * manifest (or the one for `platform`), its config and layers exist with the declared sizes, and
 * `manifest.toml`'s image_digest is that manifest's digest.
 */
export function checkOciLayout(archive: CtpArchive, opts: { platform?: Platform; imageDigest?: 'now' | 'later' } = {}): OciImage {
  const where = 'oci-layout';
  for (const [name, e] of archive.entries) {
    if (!name.startsWith('oci-layout/')) continue;
    if (name === 'oci-layout/oci-layout' || name === 'oci-layout/index.json') continue;
    if (!name.startsWith(BLOB_PREFIX)) throw new CtError('OCI_LAYOUT_INVALID', `${name}: unexpected file in the OCI layout`, { path: name });
    const hex = name.slice(BLOB_PREFIX.length);
    if (!HEX64.test(hex)) throw new CtError('OCI_LAYOUT_INVALID', `${name}: blob name is not a sha256 hex digest`, { path: name });
    if (e.sha256 !== hex) {
      throw new CtError('DIGEST_MISMATCH', `${name}: content hashes to sha256:${e.sha256}`, { path: name, expected: `sha256:${hex}`, actual: `sha256:${e.sha256}` });
    }
  }
  const blob = (d: Descriptor, at: string): Buffer => {
    const name = blobName(d);
    const e = archive.entries.get(name);
    if (!e) throw new CtError('OCI_LAYOUT_INVALID', `${at}: blob ${d.digest} is missing (${name})`, { path: name, digest: d.digest });
    if (e.size !== d.size) throw new CtError('DIGEST_MISMATCH', `${at}: ${name} is ${e.size} bytes, descriptor says ${d.size}`, { path: name, expected: d.size, actual: e.size });
    if (!e.data) throw new CtError('OCI_LAYOUT_INVALID', `${at}: ${name} (${e.size} bytes) is too large for a manifest or config`, { path: name });
    return e.data;
  };
  const present = (d: Descriptor, at: string): void => {
    const name = blobName(d);
    const e = archive.entries.get(name);
    if (!e) throw new CtError('OCI_LAYOUT_INVALID', `${at}: blob ${d.digest} is missing (${name})`, { path: name, digest: d.digest });
    if (e.size !== d.size) throw new CtError('DIGEST_MISMATCH', `${at}: ${name} is ${e.size} bytes, descriptor says ${d.size}`, { path: name, expected: d.size, actual: e.size });
  };
  const index = parseIndex(archive.file('oci-layout/index.json'), `${where}/index.json`);
  const md = selectManifest(index, blob, `${where}/index.json`, opts.platform);
  const manifest = parseImageManifest(blob(md, `${where}/index.json`), blobName(md));
  const configData = blob(manifest.config, `${blobName(md)}: config`);
  manifest.layers.forEach((l, i) => present(l, `${blobName(md)}: layers[${i}]`));
  const { config, diffIds } = parseConfig(configData, blobName(manifest.config), manifest.layers.length);
  checkEveryBlobReferenced(archive, index.manifests, md, manifest);
  const image: OciImage = { manifestDigest: md.digest, manifestSize: md.size, manifest, config, configDigest: manifest.config.digest, layers: manifest.layers, diffIds, platform: md.platform };
  if (opts.imageDigest !== 'later') checkImageDigest(archive.manifest, image);
  return image;
}

/**
 * `manifest.toml`'s image_digest must be the designated image manifest's digest. The verifier
 * calls it itself (checkOciLayout with imageDigest 'later') once the manifest is authenticated.
 */
export function checkImageDigest(m: Pick<CtpManifest, 'image_digest'>, image: Pick<OciImage, 'manifestDigest'>): void {
  if (m.image_digest !== image.manifestDigest) {
    throw new CtError('DIGEST_MISMATCH', `manifest.toml: image_digest ${m.image_digest} is not the image manifest's digest ${image.manifestDigest}`, {
      path: 'manifest.toml',
      field: 'image_digest',
      expected: image.manifestDigest,
      actual: m.image_digest,
    });
  }
}

/**
 * Every blob of the layout is reachable from index.json (its manifests and nested indexes, their
 * configs and layers): an unreferenced blob is bytes no signature covers (UNSIGNED_CONTENT).
 */
function checkEveryBlobReferenced(archive: CtpArchive, top: Descriptor[], chosen: Descriptor, chosenManifest: { config: Descriptor; layers: Descriptor[] }): void {
  const referenced = new Set<string>([chosen.digest, chosenManifest.config.digest, ...chosenManifest.layers.map((l) => l.digest)]);
  const queue = [...top];
  const visited = new Set<string>();
  // Bounded: a .ctp holds at most CTP_LIMITS.maxEntries blobs, each visited once.
  for (let i = 0; i < queue.length; i++) {
    const d = queue[i];
    if (visited.has(d.digest)) continue;
    visited.add(d.digest);
    referenced.add(d.digest);
    const data = archive.entries.get(blobName(d))?.data;
    if (!data || data.length > 4 * 1024 * 1024) continue;
    let v: unknown;
    try {
      v = parseJson(data, blobName(d), 'OCI_LAYOUT_INVALID');
    } catch {
      continue; // not JSON: a leaf blob
    }
    const o = v as { manifests?: unknown; config?: unknown; layers?: unknown };
    const descs = [...(Array.isArray(o.manifests) ? o.manifests : []), ...(o.config ? [o.config] : []), ...(Array.isArray(o.layers) ? o.layers : [])];
    for (const x of descs) {
      const digest = (x as { digest?: unknown })?.digest;
      if (typeof digest === 'string' && /^sha256:[0-9a-f]{64}$/.test(digest) && !visited.has(digest)) queue.push({ digest } as Descriptor);
    }
  }
  for (const name of archive.entries.keys()) {
    if (!name.startsWith(BLOB_PREFIX)) continue;
    const digest = `sha256:${name.slice(BLOB_PREFIX.length)}`;
    if (!referenced.has(digest)) {
      throw new CtError('UNSIGNED_CONTENT', `${name}: blob not referenced from oci-layout/index.json (no signature covers it)`, { path: name, what: 'unreferenced blob' });
    }
  }
}
