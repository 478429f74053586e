import { isCtError } from '../core/errors.js';
import { checkOciLayout } from './check-layout.js';
import { readLegacyCtp } from './legacy.js';
import type { RuntimeSpec } from './manifest.js';
import type { Descriptor, Platform } from './oci.js';
import { openCtp } from './read.js';

export interface CtpReport {
  format: 'ctp';
  bundleDigest: string;
  size: number;
  compressed: boolean;
  name: string;
  version: string;
  imageDigest: string;
  buildTimestamp: string;
  builder: string;
  runtime?: RuntimeSpec;
  platform?: Platform;
  configDigest: string;
  layers: Pick<Descriptor, 'digest' | 'size' | 'mediaType'>[];
  attestations: string[];
  security: string[];
  files: { name: string; size: number; sha256: string }[];
}

export interface LegacyReport {
  format: 'ctp-legacy';
  ctpVersion: string;
  bundleDigest: string;
  compressed: boolean;
  manifestSha256: string;
  signatures: number;
  files: { name: string; size: number; sha256: string }[];
}

export type BundleReport = CtpReport | LegacyReport;

/** What `ct inspect` shows: a checked `.ctp` (structure and digests, not signatures) or a legacy bundle. */
export async function inspectBundle(path: string): Promise<BundleReport> {
  let archive;
  try {
    archive = await openCtp(path);
  } catch (e) {
    if (isCtError(e, 'UNSUPPORTED_VERSION') && e.details.legacy === true) {
      const l = await readLegacyCtp(path);
      return { format: 'ctp-legacy', ctpVersion: l.ctpVersion, bundleDigest: l.bundleDigest, compressed: l.compressed, manifestSha256: l.manifestSha256, signatures: l.signatures.length, files: l.files };
    }
    throw e;
  }
  const image = checkOciLayout(archive);
  const files = [...archive.entries].map(([name, e]) => ({ name, size: e.size, sha256: e.sha256 })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const m = archive.manifest;
  return {
    format: 'ctp',
    bundleDigest: archive.bundleDigest,
    size: archive.size,
    compressed: archive.compressed,
    name: m.name,
    version: m.version,
    imageDigest: m.image_digest,
    buildTimestamp: m.metadata.build_timestamp,
    builder: m.metadata.builder,
    ...(m.runtime ? { runtime: m.runtime } : {}),
    ...(image.platform ? { platform: image.platform } : {}),
    configDigest: image.configDigest,
    layers: image.layers.map((l) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType })),
    attestations: files.filter((f) => f.name.startsWith('attestations/')).map((f) => f.name),
    security: files.filter((f) => f.name.startsWith('security/')).map((f) => f.name),
    files,
  };
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** Human-readable form of a report. */
export function formatReport(r: BundleReport): string {
  if (r.format === 'ctp-legacy') {
    return [
      `legacy bundle (ctp_version ${r.ctpVersion}) — read-only format, repack with ct pack`,
      `bundle digest: ${r.bundleDigest}${r.compressed ? ' (gzip)' : ''}`,
      `manifest sha256: ${r.manifestSha256} (matches manifest.ctp)`,
      `signatures: ${r.signatures} CT-SIG-01 (not checked here; ct verify checks them against trusted keys)`,
      `files:`,
      ...r.files.map((f) => `  ${f.name}  ${bytes(f.size)}`),
    ].join('\n');
  }
  const lines = [
    `${r.name} ${r.version}`,
    `bundle digest: ${r.bundleDigest} (${bytes(r.size)}${r.compressed ? ', gzip' : ''})`,
    `image digest:  ${r.imageDigest}${r.platform ? ` (${r.platform.os}/${r.platform.architecture})` : ''}`,
    `built:         ${r.buildTimestamp} by ${r.builder}`,
    `layers:`,
    ...r.layers.map((l) => `  ${l.digest}  ${bytes(l.size)}  ${l.mediaType}`),
  ];
  if (r.runtime) {
    const rt = r.runtime;
    lines.push('runtime:');
    if (rt.command) lines.push(`  command: ${JSON.stringify(rt.command)}`);
    if (rt.user) lines.push(`  user: ${rt.user}`);
    if (rt.read_only_rootfs !== undefined) lines.push(`  read-only rootfs: ${rt.read_only_rootfs}`);
    if (rt.capabilities) lines.push(`  capabilities: ${rt.capabilities.length ? rt.capabilities.join(', ') : '(none)'}`);
    if (rt.network) lines.push(`  network: ${rt.network}`);
    if (rt.ports?.length) lines.push(`  ports: ${rt.ports.join(', ')}`);
    if (rt.env) lines.push(`  env: ${Object.keys(rt.env).join(', ') || '(none)'}`);
  }
  lines.push(`attestations: ${r.attestations.length ? r.attestations.join(', ') : '(none — unsigned)'}`);
  lines.push(`security: ${r.security.length ? r.security.join(', ') : '(none)'}`);
  return lines.join('\n');
}
