// Hand-made tar archives for hostile-input tests. Headers are written byte by byte (not with the
// `tar` package's writer) so that tests can produce exactly the malformed or malicious entries a
// careful writer would refuse to make.
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface RawEntry {
  name: string;
  data?: Buffer | string;
  /** Typeflag: '0' file, '1' hard link, '2' symlink, '3' char device, '5' directory, '6' FIFO. */
  type?: string;
  linkpath?: string;
  mode?: number;
  /** Size written in the header when it should differ from the data length. */
  size?: number;
}

function octal(b: Buffer, off: number, len: number, v: number): void {
  b.write(`${v.toString(8).padStart(len - 1, '0')}\0`, off, len, 'latin1');
}

export function rawHeader(e: RawEntry): Buffer {
  const data = typeof e.data === 'string' ? Buffer.from(e.data) : (e.data ?? Buffer.alloc(0));
  const b = Buffer.alloc(512);
  b.write(e.name, 0, 100, 'utf8');
  octal(b, 100, 8, e.mode ?? (e.type === '5' ? 0o755 : 0o644));
  octal(b, 108, 8, 0);
  octal(b, 116, 8, 0);
  octal(b, 124, 12, e.size ?? data.length);
  octal(b, 136, 12, 0);
  b.fill(0x20, 148, 156);
  b[156] = (e.type ?? '0').charCodeAt(0);
  if (e.linkpath) b.write(e.linkpath, 157, 100, 'utf8');
  b.write('ustar\u000000', 257, 8, 'latin1');
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += b[i];
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return b;
}

export function rawEntry(e: RawEntry): Buffer {
  const data = typeof e.data === 'string' ? Buffer.from(e.data) : (e.data ?? Buffer.alloc(0));
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([rawHeader(e), data, pad]);
}

/** A tar of the given entries, with the end-of-archive marker unless `end: false`. */
export function rawTar(entries: RawEntry[], opts: { end?: boolean } = {}): Buffer {
  return Buffer.concat([...entries.map(rawEntry), opts.end === false ? Buffer.alloc(0) : Buffer.alloc(1024)]);
}

/** A tar without its end-of-archive marker (to append more entries to). */
export function withoutEnd(tar: Buffer): Buffer {
  let end = tar.length;
  while (end >= 512 && tar.subarray(end - 512, end).every((x) => x === 0)) end -= 512;
  return tar.subarray(0, end);
}

export const sha256hex = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** Writes an OCI image layout with the given layer blobs (plain or gzip tars) and returns its digest. */
export async function writeOciLayout(dir: string, layers: Buffer[], opts: { diffIds?: string[]; arch?: string } = {}): Promise<{ manifestDigest: string }> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  const put = async (b: Buffer): Promise<string> => {
    const hex = sha256hex(b);
    await writeFile(join(dir, 'blobs', 'sha256', hex), b);
    return `sha256:${hex}`;
  };
  const layerDescs = [];
  for (const l of layers) layerDescs.push({ mediaType: l[0] === 0x1f ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar', digest: await put(l), size: l.length });
  const config = Buffer.from(
    JSON.stringify({ architecture: opts.arch ?? 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: opts.diffIds ?? layers.map((l) => `sha256:${sha256hex(l)}`) } }),
  );
  const manifest = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: await put(config), size: config.length }, layers: layerDescs }),
  );
  const manifestDigest = await put(manifest);
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: manifestDigest, size: manifest.length, platform: { architecture: opts.arch ?? 'amd64', os: 'linux' } }] }),
  );
  return { manifestDigest };
}
