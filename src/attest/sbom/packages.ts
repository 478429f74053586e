/**
 * Package databases found in a root filesystem → packages with package URLs (purl spec). Hand-
 * written: the formats are line-based (RFC 822-like stanzas for dpkg, `K:value` lines for apk)
 * and the lockfile is JSON; none of our dependencies parses them.
 */
export interface FoundPackage {
  /** purl type: deb, apk, npm. */
  type: 'deb' | 'apk' | 'npm';
  name: string;
  version: string;
  purl: string;
  /** Where it was found (database or lockfile path in the rootfs). */
  source: string;
  arch?: string;
  supplier?: string;
  homepage?: string;
  license?: string;
  /** SPDX checksum algorithm → hex. */
  checksums?: Record<string, string>;
}

export interface OsRelease {
  id?: string;
  versionId?: string;
}

export function parseOsRelease(text: string | undefined): OsRelease {
  if (!text) return {};
  const get = (k: string) => {
    const m = new RegExp(`^${k}=(.*)$`, 'm').exec(text);
    return m ? m[1].trim().replace(/^["']|["']$/g, '') : undefined;
  };
  return { id: get('ID'), versionId: get('VERSION_ID') };
}

/** purl component encoding: percent-encode everything but unreserved characters. */
function enc(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function qualifiers(q: Record<string, string | undefined>): string {
  const parts = Object.keys(q)
    .filter((k) => q[k])
    .sort()
    .map((k) => `${k}=${enc(q[k]!)}`);
  return parts.length ? `?${parts.join('&')}` : '';
}

/** Splits RFC 822-style stanzas (dpkg status): blank-line separated, continuation lines indented. */
function stanzas(text: string): Record<string, string>[] {
  const out: Record<string, string>[] = [];
  let cur: Record<string, string> = {};
  let last: string | undefined;
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === '') {
      if (Object.keys(cur).length) out.push(cur);
      cur = {};
      last = undefined;
      continue;
    }
    if (/^[ \t]/.test(line)) {
      if (last) cur[last] += `\n${line.trim()}`;
      continue;
    }
    const c = line.indexOf(':');
    if (c <= 0) continue;
    last = line.slice(0, c).trim();
    cur[last] = line.slice(c + 1).trim();
  }
  if (Object.keys(cur).length) out.push(cur);
  return out;
}

/** `var/lib/dpkg/status` (or a distroless `status.d/*` file): installed packages only. */
export function parseDpkgStatus(text: string, source: string, os: OsRelease): FoundPackage[] {
  const ns = os.id ?? 'debian';
  const distro = os.versionId ? `${ns}-${os.versionId}` : undefined;
  const out: FoundPackage[] = [];
  for (const s of stanzas(text)) {
    if (!s.Package || !s.Version) continue;
    // `Status: install ok installed`; absent in distroless status.d files, which list installed ones.
    if (s.Status !== undefined && !/\binstalled$/.test(s.Status.split('\n')[0])) continue;
    const arch = s.Architecture;
    out.push({
      type: 'deb',
      name: s.Package,
      version: s.Version,
      purl: `pkg:deb/${enc(ns)}/${enc(s.Package)}@${enc(s.Version)}${qualifiers({ arch, distro })}`,
      source,
      arch,
      supplier: s.Maintainer?.split('\n')[0],
      homepage: s.Homepage,
    });
  }
  return out;
}

/** `lib/apk/db/installed`: `P:` name, `V:` version, `A:` arch, `L:` license, `m:` maintainer, `U:` url. */
export function parseApkInstalled(text: string, source: string, os: OsRelease): FoundPackage[] {
  const ns = os.id ?? 'alpine';
  const distro = os.versionId ? `${ns}-${os.versionId}` : undefined;
  const out: FoundPackage[] = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    const f: Record<string, string> = {};
    for (const line of block.split(/\r?\n/)) {
      const m = /^([A-Za-z]):(.*)$/.exec(line);
      if (m && f[m[1]] === undefined) f[m[1]] = m[2];
    }
    if (!f.P || !f.V) continue;
    const checksums: Record<string, string> = {};
    // `C:Q1<base64 sha1>` is the package's control checksum.
    if (f.C?.startsWith('Q1')) {
      const hex = Buffer.from(f.C.slice(2), 'base64').toString('hex');
      if (hex.length === 40) checksums.SHA1 = hex;
    }
    out.push({
      type: 'apk',
      name: f.P,
      version: f.V,
      purl: `pkg:apk/${enc(ns)}/${enc(f.P)}@${enc(f.V)}${qualifiers({ arch: f.A, distro })}`,
      source,
      arch: f.A,
      supplier: f.m,
      homepage: f.U,
      license: f.L,
      ...(Object.keys(checksums).length ? { checksums } : {}),
    });
  }
  return out;
}

/**
 * npm `package-lock.json` v2/v3 (`packages` map keyed by install path). The root project (key "")
 * and workspace links are not dependencies; v1 lockfiles (no `packages`) yield nothing.
 */
export function parsePackageLock(text: string, source: string): FoundPackage[] {
  let lock: { lockfileVersion?: unknown; packages?: Record<string, Record<string, unknown>> };
  try {
    lock = JSON.parse(text);
  } catch {
    return [];
  }
  if (!lock || typeof lock !== 'object' || !lock.packages || typeof lock.packages !== 'object') return [];
  if (lock.lockfileVersion !== 2 && lock.lockfileVersion !== 3) return [];
  const out: FoundPackage[] = [];
  for (const [key, p] of Object.entries(lock.packages)) {
    if (key === '' || !p || typeof p !== 'object' || p.link === true) continue;
    const idx = key.lastIndexOf('node_modules/');
    const name = typeof p.name === 'string' ? p.name : idx >= 0 ? key.slice(idx + 'node_modules/'.length) : undefined;
    const version = typeof p.version === 'string' ? p.version : undefined;
    if (!name || !version) continue;
    const [scope, bare] = name.startsWith('@') && name.includes('/') ? [name.slice(0, name.indexOf('/')), name.slice(name.indexOf('/') + 1)] : [undefined, name];
    const checksums: Record<string, string> = {};
    if (typeof p.integrity === 'string') {
      for (const part of p.integrity.split(/\s+/)) {
        const m = /^(sha512|sha384|sha256|sha1)-([A-Za-z0-9+/=]+)$/.exec(part);
        if (m) checksums[m[1].toUpperCase()] = Buffer.from(m[2], 'base64').toString('hex');
      }
    }
    out.push({
      type: 'npm',
      name,
      version,
      purl: `pkg:npm/${scope ? `${enc(scope)}/` : ''}${enc(bare)}@${enc(version)}`,
      source,
      license: typeof p.license === 'string' ? p.license : undefined,
      homepage: typeof p.resolved === 'string' ? p.resolved : undefined,
      ...(Object.keys(checksums).length ? { checksums } : {}),
    });
  }
  return out;
}
