import { createHash } from 'node:crypto';
import { sha256Hex } from '../core/digest.js';
import type { CtpArchive } from '../bundle/archive.js';
import type { OciImage } from '../bundle/oci.js';
import { indexRootfs, type RootfsIndex } from './sbom/rootfs.js';
import { parseApkInstalled, parseDpkgStatus, parseOsRelease, parsePackageLock, type FoundPackage } from './sbom/packages.js';
import { rfc3339, sourceDateEpoch } from './slsa.js';

/** The subset of SPDX 2.3 JSON we write (https://spdx.github.io/spdx-spec/v2.3/). */
export interface SpdxDocument {
  spdxVersion: 'SPDX-2.3';
  dataLicense: 'CC0-1.0';
  SPDXID: 'SPDXRef-DOCUMENT';
  name: string;
  documentNamespace: string;
  creationInfo: { created: string; creators: string[] };
  packages: SpdxPackage[];
  files?: SpdxFile[];
  relationships: { spdxElementId: string; relationshipType: string; relatedSpdxElement: string }[];
}

export interface SpdxPackage {
  SPDXID: string;
  name: string;
  versionInfo?: string;
  downloadLocation: string;
  /** true only for a package whose files are listed (then with packageVerificationCode). */
  filesAnalyzed: boolean;
  packageVerificationCode?: { packageVerificationCodeValue: string };
  supplier?: string;
  homepage?: string;
  licenseConcluded: string;
  licenseDeclared: string;
  licenseComments?: string;
  copyrightText: string;
  primaryPackagePurpose?: string;
  checksums?: { algorithm: string; checksumValue: string }[];
  externalRefs?: { referenceCategory: string; referenceType: string; referenceLocator: string }[];
  sourceInfo?: string;
}

export interface SpdxFile {
  SPDXID: string;
  fileName: string;
  checksums: { algorithm: string; checksumValue: string }[];
  licenseConcluded: string;
  copyrightText: string;
}

export const CT_TOOL = 'Tool: cerro-torre-0.1.0';
const NOASSERTION = 'NOASSERTION';

export interface SpdxOptions {
  name: string;
  version: string;
  imageDigest: string;
  env?: NodeJS.ProcessEnv;
  now?: Date;
}

/** SPDX ids allow letters, digits, `.` and `-`; a hash suffix keeps sanitized names unique. */
function spdxId(kind: string, label: string, key: string): string {
  return `SPDXRef-${kind}-${label.replace(/[^A-Za-z0-9.-]+/g, '-').slice(0, 64)}-${sha256Hex(key).slice(0, 12)}`;
}

/**
 * SPDX 2.3 §7.9 package verification code: SHA-1 of the package's files' SHA-1s (lower-case hex),
 * sorted and concatenated.
 */
export function packageVerificationCode(sha1s: string[]): string {
  return createHash('sha1').update([...sha1s].map((h) => h.toLowerCase()).sort().join('')).digest('hex');
}

/** `Name <email>` → SPDX `Person: Name (email)`. */
function supplierOf(s: string | undefined): string | undefined {
  if (!s) return undefined;
  const m = /^(.*?)\s*<([^>]+)>\s*$/.exec(s);
  return m ? `Person: ${m[1] || m[2]} (${m[2]})` : `Person: ${s}`;
}

/** Packages found in the rootfs's package databases and lockfiles, sorted by purl, de-duplicated. */
export function packagesOf(fs: RootfsIndex): FoundPackage[] {
  const os = parseOsRelease((fs.get('etc/os-release') ?? fs.get('usr/lib/os-release'))?.data?.toString('utf8'));
  const found: FoundPackage[] = [];
  for (const [path, f] of [...fs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (!f.data) continue;
    const text = f.data.toString('utf8');
    if (path === 'var/lib/dpkg/status' || path.startsWith('var/lib/dpkg/status.d/')) found.push(...parseDpkgStatus(text, `/${path}`, os));
    else if (path === 'lib/apk/db/installed') found.push(...parseApkInstalled(text, `/${path}`, os));
    else if (path.endsWith('package-lock.json')) found.push(...parsePackageLock(text, `/${path}`));
  }
  const byPurl = new Map<string, FoundPackage>();
  for (const p of found) if (!byPurl.has(p.purl)) byPurl.set(p.purl, p);
  return [...byPurl.values()].sort((a, b) => (a.purl < b.purl ? -1 : a.purl > b.purl ? 1 : 0));
}

/**
 * The SBOM of an image: its packages (dpkg, apk, npm lockfiles) with purls, or, when none is
 * found, every file with its SHA-1 (required by SPDX 2.3) and SHA-256 under the image package,
 * which is then `filesAnalyzed` with its package verification code. Deterministic: ids derive
 * from purls/paths, the namespace from the image digest, `created` from SOURCE_DATE_EPOCH when set.
 */
export function spdxFromRootfs(fs: RootfsIndex, opts: SpdxOptions): SpdxDocument {
  const imageHex = opts.imageDigest.slice(7);
  const created = rfc3339(sourceDateEpoch(opts.env) ?? opts.now ?? new Date());
  const imageId = 'SPDXRef-Image';
  const image: SpdxPackage = {
    SPDXID: imageId,
    name: opts.name,
    versionInfo: opts.version,
    downloadLocation: NOASSERTION,
    filesAnalyzed: false,
    licenseConcluded: NOASSERTION,
    licenseDeclared: NOASSERTION,
    copyrightText: NOASSERTION,
    primaryPackagePurpose: 'CONTAINER',
    checksums: [{ algorithm: 'SHA256', checksumValue: imageHex }],
    externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: `pkg:oci/${encodeURIComponent(opts.name.toLowerCase())}@${encodeURIComponent(opts.imageDigest)}` }],
  };
  const relationships: SpdxDocument['relationships'] = [{ spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: imageId }];
  const packages: SpdxPackage[] = [image];
  const found = packagesOf(fs);
  let files: SpdxFile[] | undefined;
  for (const p of found) {
    const id = spdxId('Package', `${p.type}-${p.name}`, p.purl);
    const pkg: SpdxPackage = {
      SPDXID: id,
      name: p.name,
      versionInfo: p.version,
      downloadLocation: p.homepage && /^https:\/\//.test(p.homepage) && p.type === 'npm' ? p.homepage : NOASSERTION,
      filesAnalyzed: false,
      licenseConcluded: NOASSERTION,
      licenseDeclared: NOASSERTION,
      copyrightText: NOASSERTION,
      // npm packages are libraries; distro packages are of every kind (libraries, tools, data), so no purpose is claimed.
      ...(p.type === 'npm' ? { primaryPackagePurpose: 'LIBRARY' } : {}),
      externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: p.purl }],
      sourceInfo: `found in ${p.source}`,
    };
    // Declared licenses are kept as text: distro and npm license fields are not always valid SPDX expressions.
    if (p.license) pkg.licenseComments = `declared: ${p.license}`;
    const supplier = supplierOf(p.supplier);
    if (supplier) pkg.supplier = supplier;
    if (p.homepage && p.type !== 'npm' && /^https?:\/\//.test(p.homepage)) pkg.homepage = p.homepage;
    if (p.checksums) pkg.checksums = Object.keys(p.checksums).sort().map((a) => ({ algorithm: a, checksumValue: p.checksums![a] }));
    packages.push(pkg);
    relationships.push({ spdxElementId: imageId, relationshipType: 'CONTAINS', relatedSpdxElement: id });
  }
  if (found.length === 0) {
    files = [...fs]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([path, f]) => ({
        SPDXID: `SPDXRef-File-${sha256Hex(path).slice(0, 16)}`,
        fileName: `./${path}`,
        checksums: [
          { algorithm: 'SHA1', checksumValue: f.sha1 },
          { algorithm: 'SHA256', checksumValue: f.sha256 },
        ],
        licenseConcluded: NOASSERTION,
        copyrightText: NOASSERTION,
      }));
    for (const f of files) relationships.push({ spdxElementId: imageId, relationshipType: 'CONTAINS', relatedSpdxElement: f.SPDXID });
    // The image's files are listed, so they were analyzed: SPDX then requires the verification code.
    image.filesAnalyzed = true;
    image.packageVerificationCode = { packageVerificationCodeValue: packageVerificationCode(files.map((f) => f.checksums.find((c) => c.algorithm === 'SHA1')!.checksumValue)) };
  }
  return {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: `${opts.name}-${opts.version}`,
    documentNamespace: `https://cerro-torre.dev/spdx/${encodeURIComponent(opts.name)}/${imageHex}`,
    creationInfo: { created, creators: [CT_TOOL] },
    packages,
    ...(files ? { files } : {}),
    relationships,
  };
}

/** Reads the image's layers (streamed, nothing extracted) and builds its SBOM. */
export async function spdxForImage(archive: CtpArchive, image: OciImage, opts: { env?: NodeJS.ProcessEnv; now?: Date } = {}): Promise<SpdxDocument> {
  const fs = await indexRootfs(archive, image);
  return spdxFromRootfs(fs, { name: archive.manifest.name, version: archive.manifest.version, imageDigest: image.manifestDigest, ...opts });
}
