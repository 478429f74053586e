import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CtError, asIoError } from '../../core/errors.js';
import { sha256Digest } from '../../core/digest.js';
import { IN_MEMORY_BLOB_BYTES } from '../limits.js';
import { parseConfig, parseImageManifest, parseIndex, selectManifest, type Descriptor, type Platform } from '../oci.js';
import type { SourceImage } from './image.js';

/** Reads a blob of an OCI layout directory, checking size and digest (manifests and configs). */
async function readBlob(dir: string, d: Descriptor, where: string): Promise<Buffer> {
  const p = join(dir, 'blobs', 'sha256', d.digest.slice(7));
  if (d.size > IN_MEMORY_BLOB_BYTES) throw new CtError('OCI_LAYOUT_INVALID', `${where}: ${p} is ${d.size} bytes, too large for a manifest or config`, { path: p });
  let data: Buffer;
  try {
    data = await readFile(p);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new CtError('OCI_LAYOUT_INVALID', `${where}: blob ${d.digest} is missing (${p})`, { path: p });
    throw asIoError(e, p);
  }
  if (data.length !== d.size) throw new CtError('DIGEST_MISMATCH', `${p}: ${data.length} bytes, descriptor says ${d.size}`, { path: p });
  if (sha256Digest(data) !== d.digest) throw new CtError('DIGEST_MISMATCH', `${p}: content does not hash to ${d.digest}`, { path: p, expected: d.digest });
  return data;
}

/**
 * Reads an image from an OCI image layout directory (`--oci-layout DIR`). Manifest and config are
 * checked now; layers are checked (size and digest) while they are copied into the bundle.
 */
export async function imageFromOciLayout(dir: string, platform?: Platform): Promise<SourceImage> {
  let layoutText: Buffer;
  let indexText: Buffer;
  try {
    layoutText = await readFile(join(dir, 'oci-layout'));
    indexText = await readFile(join(dir, 'index.json'));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new CtError('OCI_LAYOUT_INVALID', `${dir}: not an OCI image layout (oci-layout and index.json required)`, { path: dir });
    throw asIoError(e, dir);
  }
  let version: unknown;
  try {
    version = (JSON.parse(layoutText.toString('utf8')) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
  } catch {
    throw new CtError('OCI_LAYOUT_INVALID', `${dir}/oci-layout: not valid JSON`, { path: join(dir, 'oci-layout') });
  }
  if (typeof version !== 'string' || !/^1\.\d+\.\d+$/.test(version)) {
    throw new CtError('UNSUPPORTED_VERSION', `${dir}/oci-layout: imageLayoutVersion ${String(version)} is not supported (1.x)`, { path: join(dir, 'oci-layout') });
  }
  const index = parseIndex(indexText, `${dir}/index.json`);
  const blobs = new Map<string, Buffer>();
  for (const d of index.manifests) if (d.mediaType.includes('index') || d.mediaType.includes('list')) blobs.set(d.digest, await readBlob(dir, d, `${dir}/index.json`));
  const md = selectManifest(index, (d) => blobs.get(d.digest)!, `${dir}/index.json`, platform);
  const manifestBytes = await readBlob(dir, md, `${dir}/index.json`);
  const manifest = parseImageManifest(manifestBytes, `${dir}: manifest ${md.digest}`);
  const configBytes = await readBlob(dir, manifest.config, `${dir}: config`);
  parseConfig(configBytes, `${dir}: config ${manifest.config.digest}`, manifest.layers.length);
  const config = JSON.parse(configBytes.toString('utf8')) as { architecture?: string; os?: string; variant?: string };
  const layers: SourceImage['layers'] = [];
  for (const l of manifest.layers) {
    const p = join(dir, 'blobs', 'sha256', l.digest.slice(7));
    try {
      const st = await stat(p);
      if (!st.isFile()) throw new CtError('OCI_LAYOUT_INVALID', `${p}: not a regular file`, { path: p });
      if (st.size !== l.size) throw new CtError('DIGEST_MISMATCH', `${p}: ${st.size} bytes, descriptor says ${l.size}`, { path: p });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new CtError('OCI_LAYOUT_INVALID', `${dir}: layer ${l.digest} is missing (${p})`, { path: p });
      throw asIoError(e, p);
    }
    layers.push({ digest: l.digest, size: l.size, source: { path: p, size: l.size, sha256: l.digest.slice(7) } });
  }
  const plat: Platform = md.platform ?? { architecture: config.architecture ?? 'unknown', os: config.os ?? 'linux', ...(config.variant ? { variant: config.variant } : {}) };
  return { manifestBytes, configBytes, layers, platform: plat };
}
