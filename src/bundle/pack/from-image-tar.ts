import { createHash } from 'node:crypto';
import { closeSync, copyFileSync, createReadStream, mkdirSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { CtError, asIoError } from '../../core/errors.js';
import { canonicalBytes } from '../../core/jcs.js';
import { LAYER_LIMITS } from '../limits.js';
import { checkEntryName } from '../names.js';
import { readTar } from '../tar-read.js';
import { MT, parseConfig, type Platform } from '../oci.js';
import { imageFromOciLayout } from './from-oci-layout.js';
import type { SourceImage } from './image.js';

interface Stored {
  path: string;
  size: number;
  sha256: string;
}

/**
 * Extracts an image archive (`docker save` output or an OCI archive tar) into `tmpDir`, safely:
 * names are checked, only regular files and directories are created, and links inside the archive
 * (docker save links repeated layers) become copies of their targets when those are inside it.
 */
async function extractImageTar(file: string, tmpDir: string): Promise<Map<string, Stored>> {
  const files = new Map<string, Stored>();
  const links: { name: string; target: string }[] = [];
  const made = new Set<string>();
  const mkdirp = (d: string): void => {
    if (made.has(d)) return;
    mkdirSync(d, { recursive: true, mode: 0o755 });
    made.add(d);
  };
  await readTar(createReadStream(file, { highWaterMark: 1 << 20 }), {
    limits: { ...LAYER_LIMITS, maxEntries: 100_000 },
    where: file,
    onEntry(te) {
      const at = `${file}: entry ${JSON.stringify(te.rawName).slice(0, 200)} at offset ${te.offset}`;
      const name = checkEntryName(te.rawName, at, LAYER_LIMITS, { allowDotSlash: true });
      if (name === '') return;
      if (te.type === 'directory') return void mkdirp(join(tmpDir, name));
      if (te.type === 'symlink' || te.type === 'hardlink') {
        const raw = te.linkpath ?? '';
        const target = te.type === 'symlink' ? posix.normalize(posix.join(posix.dirname(name), raw)) : posix.normalize(raw.replace(/^(\.\/)+/, ''));
        if (raw.startsWith('/') || target.startsWith('../') || target === '..') {
          throw new CtError('TAR_UNSAFE_LINK', `${at}: link to ${JSON.stringify(raw)} leaves the archive`, { where: file, name, linkpath: raw });
        }
        links.push({ name, target });
        return;
      }
      if (te.type !== 'file') throw new CtError('TAR_DEVICE_NODE', `${at}: ${te.type} in an image archive`, { where: file, name });
      if (files.has(name)) throw new CtError('TAR_DUPLICATE_ENTRY', `${at}: duplicate entry`, { where: file, name });
      const path = join(tmpDir, name);
      mkdirp(dirname(path));
      // Synchronous writes keep entries strictly ordered inside readTar's synchronous sink.
      const fd = openSync(path, 'wx', 0o644);
      const hash = createHash('sha256');
      files.set(name, { path, size: te.size, sha256: '' });
      return {
        data(c) {
          hash.update(c);
          writeSync(fd, c);
        },
        end() {
          closeSync(fd);
          files.get(name)!.sha256 = hash.digest('hex');
        },
      };
    },
  });
  // Resolve links after every file is present (a link may precede its target).
  for (let round = 0; round < 8 && links.length > 0; round++) {
    for (let i = links.length - 1; i >= 0; i--) {
      const t = files.get(links[i].target);
      if (!t) continue;
      const path = join(tmpDir, links[i].name);
      mkdirp(dirname(path));
      copyFileSync(t.path, path);
      files.set(links[i].name, { ...t, path });
      links.splice(i, 1);
    }
  }
  return files;
}

interface DockerManifestEntry {
  Config?: unknown;
  Layers?: unknown;
}

/**
 * Reads an image from a `docker save` tar or an OCI archive tar (`--image-tar FILE`). An OCI
 * archive is read as a layout; a docker save archive is converted: its config is kept byte for
 * byte (so the image ID stays the config digest), its layer tars become OCI layers (plain tar, or
 * gzip when the bytes say so), and a new OCI image manifest is written.
 */
export async function imageFromImageTar(file: string, tmpDir: string, platform?: Platform): Promise<SourceImage> {
  const files = await extractImageTar(file, tmpDir);
  if (files.has('oci-layout') && files.has('index.json')) return imageFromOciLayout(tmpDir, platform);
  const mf = files.get('manifest.json');
  if (!mf) throw new CtError('OCI_LAYOUT_INVALID', `${file}: neither an OCI archive (oci-layout, index.json) nor a docker save archive (manifest.json)`, { path: file });
  let list: unknown;
  try {
    list = JSON.parse(readFileSync(mf.path, 'utf8'));
  } catch (e) {
    throw new CtError('OCI_LAYOUT_INVALID', `${file}: manifest.json is not valid JSON`, { path: file }, { cause: e });
  }
  if (!Array.isArray(list) || list.length !== 1) throw new CtError('OCI_LAYOUT_INVALID', `${file}: manifest.json must describe exactly one image`, { path: file });
  const entry = list[0] as DockerManifestEntry;
  if (typeof entry.Config !== 'string' || !Array.isArray(entry.Layers) || !entry.Layers.every((l) => typeof l === 'string')) {
    throw new CtError('OCI_LAYOUT_INVALID', `${file}: manifest.json entry needs Config and Layers`, { path: file });
  }
  const get = (name: string, what: string): Stored => {
    const s = files.get(posix.normalize(name.replace(/^(\.\/)+/, '')));
    if (!s) throw new CtError('OCI_LAYOUT_INVALID', `${file}: ${what} ${name} is not in the archive`, { path: file, name });
    return s;
  };
  const cfg = get(entry.Config, 'config');
  let configBytes: Buffer;
  try {
    configBytes = readFileSync(cfg.path);
  } catch (e) {
    throw asIoError(e, cfg.path);
  }
  const layerNames = entry.Layers as string[];
  const { config, diffIds } = parseConfig(configBytes, `${file}: ${entry.Config}`, layerNames.length);
  const layers: SourceImage['layers'] = [];
  const descriptors: { mediaType: string; digest: string; size: number }[] = [];
  layerNames.forEach((ln, i) => {
    const s = get(ln, `layer ${i}`);
    const head = Buffer.alloc(2);
    const fd = openSync(s.path, 'r');
    try {
      readSync(fd, head, 0, 2, 0);
    } finally {
      closeSync(fd);
    }
    const gz = head[0] === 0x1f && head[1] === 0x8b;
    const digest = `sha256:${s.sha256}`;
    if (!gz && diffIds[i] !== digest) {
      throw new CtError('DIGEST_MISMATCH', `${file}: layer ${ln} hashes to ${digest}, config rootfs.diff_ids[${i}] says ${diffIds[i]}`, { path: ln, expected: diffIds[i], actual: digest });
    }
    descriptors.push({ mediaType: gz ? MT.layerGzip : MT.layerTar, digest, size: s.size });
    layers.push({ digest, size: s.size, source: { path: s.path, size: s.size, sha256: s.sha256 } });
  });
  const manifestBytes = canonicalBytes({
    schemaVersion: 2,
    mediaType: MT.manifest,
    config: { mediaType: MT.config, digest: `sha256:${cfg.sha256}`, size: configBytes.length },
    layers: descriptors,
  });
  const arch = typeof config.architecture === 'string' ? config.architecture : 'unknown';
  const os = typeof config.os === 'string' ? config.os : 'linux';
  return { manifestBytes, configBytes, layers, platform: { architecture: arch, os } };
}
