// Builds small but real .ctp bundles for the registry and attestation tests: OCI layers made
// from file maps (tar written with the bundle's own deterministic header encoder), a config whose
// diff_ids match, an image manifest, and the bundle files around it, written by writeCtp.
import { gzipSync } from 'node:zlib';
import { sha256Digest } from '../../src/core/digest.js';
import { encodeHeader, padding, END_OF_ARCHIVE } from '../../src/bundle/tar-write.js';
import { serializeManifest } from '../../src/bundle/manifest.js';
import { writeCtp, type CtpFileSource } from '../../src/bundle/write.js';

export type LayerFiles = Record<string, string | Buffer>;

/** An uncompressed layer tar of regular files (parent directories added). */
export function layerTar(files: LayerFiles): Buffer {
  const parts: Buffer[] = [];
  const dirs = new Set<string>();
  for (const name of Object.keys(files)) {
    const segs = name.split('/');
    for (let i = 1; i < segs.length; i++) dirs.add(segs.slice(0, i).join('/'));
  }
  for (const d of [...dirs].sort()) parts.push(encodeHeader({ name: `${d}/`, type: 'Directory', size: 0, mode: 0o755, mtime: 0 }));
  for (const [name, content] of Object.entries(files).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const data = Buffer.isBuffer(content) ? content : Buffer.from(content);
    parts.push(encodeHeader({ name, type: 'File', size: data.length, mode: 0o644, mtime: 0 }), data, padding(data.length));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

export interface FixtureOptions {
  layers?: LayerFiles[];
  gzip?: boolean;
  name?: string;
  /** Extra bundle files (attestations/*, security/*). */
  files?: Record<string, string | Buffer>;
}

export interface Fixture {
  imageDigest: string;
  bundleDigest: string;
  size: number;
}

export const DEFAULT_FILES: Record<string, string> = {
  'attestations/bundle.json': JSON.stringify({ mediaType: 'application/vnd.verified-container.bundle+json', note: 'fixture' }),
  'attestations/build.sigstore.json': JSON.stringify({ mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json', note: 'fixture' }),
  'security/seccomp.json': JSON.stringify({ defaultAction: 'SCMP_ACT_ERRNO' }),
};

export async function makeCtp(out: string, opts: FixtureOptions = {}): Promise<Fixture> {
  const layers = opts.layers ?? [{ 'etc/hello.txt': 'hello\n', 'bin/app': Buffer.alloc(3000, 7) }];
  const blobs = new Map<string, Buffer>();
  const layerDescs = [];
  const diffIds = [];
  for (const l of layers) {
    const tar = layerTar(l);
    const gz = gzipSync(tar);
    diffIds.push(sha256Digest(tar));
    const d = sha256Digest(gz);
    blobs.set(d, gz);
    layerDescs.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d, size: gz.length });
  }
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: diffIds } }));
  const configDigest = sha256Digest(config);
  blobs.set(configDigest, config);
  const manifest = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length }, layers: layerDescs }),
  );
  const imageDigest = sha256Digest(manifest);
  blobs.set(imageDigest, manifest);
  const index = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: imageDigest, size: manifest.length }] };
  const files = new Map<string, CtpFileSource>();
  files.set('manifest.toml', Buffer.from(serializeManifest({ name: opts.name ?? 'fixture', version: '1.0.0', image_digest: imageDigest, metadata: { build_timestamp: '2026-01-01T00:00:00Z', builder: 'test' } })));
  files.set('oci-layout/oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
  files.set('oci-layout/index.json', Buffer.from(JSON.stringify(index)));
  for (const [d, b] of blobs) files.set(`oci-layout/blobs/sha256/${d.slice(7)}`, b);
  for (const [n, c] of Object.entries(opts.files ?? DEFAULT_FILES)) files.set(n, Buffer.isBuffer(c) ? c : Buffer.from(c));
  const r = await writeCtp(out, files, { gzip: opts.gzip ?? false, mtime: 0 });
  return { imageDigest, bundleDigest: r.digest, size: r.size };
}
