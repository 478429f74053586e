import { mkdtempSync } from 'node:fs';
import { lstat, readdir, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { CtError, asIoError } from '../../core/errors.js';
import { readRegularFile } from '../../core/fs.js';
import { MAX_SMALL_FILE_BYTES } from '../limits.js';
import { sha256Digest } from '../../core/digest.js';
import { canonicalBytes } from '../../core/jcs.js';
import { serializeManifest, type CtpManifest, type RuntimeSpec } from '../manifest.js';
import { MT, OCI_LAYOUT_FILE, type Platform } from '../oci.js';
import { defaultMtime } from '../tar-write.js';
import { writeCtp, type CtpFileSource } from '../write.js';
import { imageFromImageTar } from './from-image-tar.js';
import { imageFromOciLayout } from './from-oci-layout.js';
import type { SourceImage } from './image.js';
import { ociArch, readPackInputs, type PackInputs } from './inputs.js';
import { buildDirLayer, SCRATCH_PREFIX, VCS_METADATA } from './layer.js';
import { pinRoot, type PinnedDir } from './pinned-dir.js';

export const BUILDER = 'cerro-torre ct 0.1.0';

/** Files `--security-dir` may hold; they land under `security/` unchanged (SPEC §2). */
export const SECURITY_FILES = ['apparmor', 'monitor.yaml', 'seccomp.json', 'selinux'] as const;
/** The SELinux policy's one place: `security/selinux/policy.cil` (CIL, udica style). */
export const SELINUX_POLICY_FILE = 'selinux/policy.cil';

export type PackSource = { dir: string } | { ociLayout: string } | { imageTar: string };

export interface PackOptions {
  from: PackSource;
  out: string;
  name?: string;
  version?: string;
  /** gzip the whole `.ctp` (the layers are compressed either way). */
  gzip?: boolean;
  securityDir?: string;
  /** Directories `[[include]]` may copy from besides the packed one and the system's (layer.ts). */
  includeFrom?: string[];
  /** Manifest inputs (`ct.toml` format); default `ct.toml` in the source directory. */
  runtimeFile?: string;
  /** Seconds; default SOURCE_DATE_EPOCH or 0. Also the build timestamp, so output is reproducible. */
  mtime?: number;
  platform?: Platform;
  /** Sets a signal handler empties (src/cli/interrupt.ts): the temporaries and the scratch directory. */
  temps?: Set<string>;
  scratchDirs?: Set<string>;
  /** false: a file that appeared at `out` while packing is refused (IO_ERROR), not replaced (default true). */
  replace?: boolean;
}

export interface PackResult {
  out: string;
  bundleDigest: string;
  size: number;
  imageDigest: string;
  manifest: CtpManifest;
}

function rfc3339(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** OCI image config for a directory packed as one layer, carrying the `[runtime]` inputs. */
function dirConfig(inputs: PackInputs, diffId: string, created: string): { bytes: Buffer; platform: Platform } {
  const rt: RuntimeSpec = inputs.runtime ?? {};
  const cfg: Record<string, unknown> = {};
  const env = rt.env ?? {};
  cfg.Env = [...(env.PATH === undefined ? [DEFAULT_PATH] : []), ...Object.keys(env).sort().map((k) => `${k}=${env[k]}`)];
  if (rt.user) cfg.User = rt.user;
  if (rt.command) cfg.Cmd = rt.command;
  if (rt.workdir) cfg.WorkingDir = rt.workdir;
  if (rt.ports?.length) cfg.ExposedPorts = Object.fromEntries(rt.ports.map((p) => [p, {}]));
  const platform: Platform = { architecture: inputs.architecture ?? ociArch(), os: inputs.os ?? 'linux' };
  const config = {
    created,
    architecture: platform.architecture,
    os: platform.os,
    config: cfg,
    rootfs: { type: 'layers', diff_ids: [diffId] },
    history: [{ created, created_by: BUILDER }],
  };
  return { bytes: canonicalBytes(config), platform };
}

async function securityFiles(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  let names: string[];
  try {
    // A real directory, as its files must be: a committed link named like the security directory
    // would aim the reads at a directory of the machine that builds.
    if (!(await lstat(dir)).isDirectory()) throw new CtError('USAGE', `${dir}: the security directory must be a directory (links are not followed)`, { path: dir });
    names = await readdir(dir);
  } catch (e) {
    throw asIoError(e, dir);
  }
  for (const n of names.sort()) {
    if (!(SECURITY_FILES as readonly string[]).includes(n)) {
      throw new CtError('USAGE', `${join(dir, n)}: unexpected file in the security directory (allowed: ${SECURITY_FILES.join(', ')})`, { path: join(dir, n) });
    }
    const p = n === 'selinux' ? join(dir, SELINUX_POLICY_FILE) : join(dir, n);
    if (n === 'selinux') {
      // A real directory: a committed link named selinux would aim the read elsewhere.
      const st = await lstat(join(dir, n)).catch((e: unknown) => {
        throw asIoError(e, join(dir, n));
      });
      if (!st.isDirectory()) throw new CtError('USAGE', `${join(dir, n)}: must be a directory holding policy.cil (links are not followed)`, { path: join(dir, n) });
      const inside = await readdir(join(dir, n)).catch((e: unknown) => {
        throw asIoError(e, join(dir, n));
      });
      if (inside.length !== 1 || inside[0] !== 'policy.cil') throw new CtError('USAGE', `${join(dir, n)}: must hold exactly policy.cil`, { path: join(dir, n) });
    }
    const data = await readRegularFile(p, MAX_SMALL_FILE_BYTES, 'a security profile');
    if (n === 'seccomp.json') {
      try {
        JSON.parse(data.toString('utf8'));
      } catch (e) {
        throw new CtError('JSON_INVALID', `${p}: not valid JSON (${(e as Error).message})`, { path: p });
      }
    }
    out.set(n === 'selinux' ? `security/${SELINUX_POLICY_FILE}` : `security/${n}`, data);
  }
  return out;
}

/**
 * `ct pack`: builds a `.ctp` from a directory (one deterministic layer), an OCI image layout
 * directory, or a `docker save` / OCI archive tar. Identical inputs give identical bytes.
 */
export async function packCtp(opts: PackOptions): Promise<PackResult> {
  // The directory first (a mistyped path said "needs a name and a version": no ct.toml found),
  // and once: opened here, its ct.toml, its walk and the [[include]] check all go through this one
  // handle. Named again at each step, DIR renamed for a link to another directory after its
  // ct.toml was read packed that directory instead (a root-only one, under a pack run as root).
  const pinned = 'dir' in opts.from ? await pinRoot(opts.from.dir) : undefined;
  try {
    return await packFrom(opts, pinned);
  } finally {
    await pinned?.root.fh.close().catch(() => undefined);
  }
}

async function packFrom(opts: PackOptions, pinned: { root: PinnedDir; real: string | undefined } | undefined): Promise<PackResult> {
  const mtime = opts.mtime ?? defaultMtime();
  const created = rfc3339(mtime);
  const out = resolve(opts.out);
  let inputs: PackInputs = {};
  // --runtime FILE is the operator's own argument (a link or /dev/stdin is theirs to give); the
  // directory's ct.toml is the checkout's, read as a regular file only.
  if (opts.runtimeFile) inputs = await readPackInputs(opts.runtimeFile, { operatorPath: true });
  else if ('dir' in opts.from && pinned && (await lstat(`${pinned.root.at}/ct.toml`).then(() => true, () => false))) {
    inputs = await readPackInputs(join(opts.from.dir, 'ct.toml'), { readFrom: `${pinned.root.at}/ct.toml`, includeBase: pinned.root.at });
  }
  const name = opts.name ?? inputs.name;
  const version = opts.version ?? inputs.version;
  if (!name || !version) throw new CtError('USAGE', 'ct pack needs a name and a version (--name/--version or ct.toml)', {});
  const security = opts.securityDir ? await securityFiles(opts.securityDir) : new Map<string, Buffer>();

  let tmp: string;
  try {
    // Synchronous, so the name is in scratchDirs before a signal handler can next run.
    tmp = mkdtempSync(join(dirname(out), SCRATCH_PREFIX));
    opts.scratchDirs?.add(tmp);
  } catch (e) {
    throw asIoError(e, dirname(out));
  }
  try {
    let image: SourceImage;
    if ('dir' in opts.from) {
      if (!pinned) throw new Error('ct pack DIR: the directory was not opened');
      // --out inside DIR: neither this run's scratch directory nor an earlier run's output is packed.
      const skip = await Promise.all([tmp, out].map((p) => lstat(p).catch(() => undefined)));
      const layer = await buildDirLayer(pinned.root, pinned.real, opts.from.dir, join(tmp, 'layer'), {
        mtime, exclude: ['ct.toml'], excludeNames: VCS_METADATA, skip: skip.filter((s) => s !== undefined), include: inputs.include, includeRoots: opts.includeFrom, temps: opts.temps,
      });
      const cfg = dirConfig(inputs, layer.diffId, created);
      const manifestBytes = canonicalBytes({
        schemaVersion: 2,
        mediaType: MT.manifest,
        config: { mediaType: MT.config, digest: sha256Digest(cfg.bytes), size: cfg.bytes.length },
        layers: [{ mediaType: MT.layerGzip, digest: layer.digest, size: layer.size }],
      });
      image = { manifestBytes, configBytes: cfg.bytes, platform: cfg.platform, layers: [{ digest: layer.digest, size: layer.size, source: { path: layer.path, size: layer.size } }] };
    } else if ('ociLayout' in opts.from) {
      image = await imageFromOciLayout(opts.from.ociLayout, opts.platform);
    } else {
      image = await imageFromImageTar(opts.from.imageTar, join(tmp, 'image'), opts.platform);
    }

    const imageDigest = sha256Digest(image.manifestBytes);
    const manifest: CtpManifest = {
      name,
      version,
      image_digest: imageDigest,
      metadata: { build_timestamp: created, builder: BUILDER },
      ...(inputs.runtime ? { runtime: inputs.runtime } : {}),
    };
    const index = {
      schemaVersion: 2,
      mediaType: MT.index,
      manifests: [
        {
          mediaType: MT.manifest,
          digest: imageDigest,
          size: image.manifestBytes.length,
          platform: image.platform,
          annotations: { 'org.opencontainers.image.ref.name': version },
        },
      ],
    };
    const files = new Map<string, CtpFileSource>();
    files.set('manifest.toml', Buffer.from(serializeManifest(manifest), 'utf8'));
    files.set('oci-layout/oci-layout', Buffer.from(OCI_LAYOUT_FILE));
    files.set('oci-layout/index.json', canonicalBytes(index));
    const blob = (digest: string): string => `oci-layout/blobs/sha256/${digest.slice(7)}`;
    files.set(blob(imageDigest), image.manifestBytes);
    files.set(blob(sha256Digest(image.configBytes)), image.configBytes);
    for (const l of image.layers) files.set(blob(l.digest), l.source);
    for (const [n, data] of security) files.set(n, data);
    const r = await writeCtp(out, files, { gzip: opts.gzip, mtime, temps: opts.temps, replace: opts.replace });
    return { out, bundleDigest: r.digest, size: r.size, imageDigest, manifest };
  } finally {
    await rm(tmp, { recursive: true, force: true });
    opts.scratchDirs?.delete(tmp);
  }
}
