/**
 * The `image` source: pulls an image by reference into an OCI image layout directory, which
 * `packCtp({ ociLayout })` then packs. Manifests are checked against their digests and every blob
 * against its descriptor while it streams (RegistryClient); an index is resolved to the
 * linux/<this machine's architecture> manifest, as `ct pack --oci-layout` would choose it.
 * Credentials and the network guard are the registry client's (SPEC §3 Fetching).
 */
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CtError } from '../../src/core/errors.js';
import { RegistryClient, type ClientOptions } from '../../src/oci/client.js';
import { parseReference } from '../../src/oci/reference.js';
import { MT } from '../../src/oci/media-types.js';
import { OCI_LAYOUT_FILE, parseImageManifest, parseIndex, selectManifest } from '../../src/bundle/oci.js';
import { ociArch } from '../../src/bundle/pack/inputs.js';

const isIndex = (mt: string) => mt === MT.imageIndex || mt === MT.dockerManifestList;

/** Pulls `reference` into `dir` (created); returns the digest of the manifest that was pulled. */
export async function pullImageLayout(reference: string, dir: string, opts: ClientOptions = {}): Promise<{ topDigest: string; manifestDigest: string }> {
  const ref = parseReference(reference);
  const client = await RegistryClient.open(ref, opts);
  const blobs = join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const put = (digest: string, bytes: Buffer) => writeFile(join(blobs, digest.slice(7)), bytes);
  try {
    const top = await client.getManifest(ref.digest ?? ref.tag ?? 'latest');
    await put(top.digest, top.bytes);
    let manifest = top;
    if (isIndex(top.mediaType)) {
      const index = parseIndex(top.bytes, `${reference}: index`);
      const nested = () => {
        throw new CtError('OCI_LAYOUT_INVALID', `${reference}: nested image indexes are not supported`, { reference });
      };
      const d = selectManifest(index, nested, reference, { os: 'linux', architecture: ociArch() });
      manifest = await client.getManifest(d.digest);
      await put(manifest.digest, manifest.bytes);
    }
    const m = parseImageManifest(manifest.bytes, `${reference}: manifest ${manifest.digest}`);
    for (const d of [m.config, ...m.layers]) await client.pullBlob(d, createWriteStream(join(blobs, d.digest.slice(7))));
    await writeFile(join(dir, 'oci-layout'), OCI_LAYOUT_FILE);
    await writeFile(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MT.imageIndex, manifests: [{ mediaType: top.mediaType, digest: top.digest, size: top.bytes.length }] }));
    return { topDigest: top.digest, manifestDigest: manifest.digest };
  } finally {
    await client.close();
  }
}
