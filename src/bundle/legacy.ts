import { createHash, verify as verifySig, type KeyObject } from 'node:crypto';
import { CtError } from '../core/errors.js';
import { keyIdOf } from '../trust/keyid.js';
import type { TarLimits } from './limits.js';
import { readCtpArchive } from './read.js';

/** One `CT-SIG-01` signature of a legacy bundle and what checking it gave. */
export interface LegacySignature {
  suite: string;
  keyId?: string;
  /** true/false when trusted keys were given; null when not checked. */
  valid: boolean | null;
  /** Key id (`sha256:` of SPKI) of the trusted key that verified it. */
  verifiedBy?: string;
}

export interface LegacyCtp {
  legacy: true;
  ctpVersion: string;
  bundleDigest: string;
  compressed: boolean;
  manifestText: string;
  /** Hex SHA-256 as summary.json states it, checked against the manifest. */
  manifestSha256: string;
  signatures: LegacySignature[];
  /** True when trusted keys were given and at least one signature verified with one of them. */
  verified: boolean;
  files: { name: string; size: number; sha256: string }[];
}

/**
 * Hash of a legacy manifest as upstream `ct` computes it: the text read line by line, each line
 * followed by LF (so CRLF keeps its CR and a missing final newline is supplied).
 */
export function legacyManifestSha256(text: Buffer): string {
  const h = createHash('sha256');
  let start = 0;
  while (start < text.length) {
    const nl = text.indexOf(0x0a, start);
    const end = nl === -1 ? text.length : nl;
    h.update(text.subarray(start, end));
    h.update('\n');
    start = end + 1;
  }
  return h.digest('hex');
}

const HEX64 = /^[0-9a-f]{64}$/;
const HEX128 = /^[0-9a-f]{128}$/;

/**
 * Reads a legacy `ctp_version` 1.0 bundle (ustar with manifest.ctp + summary.json; SPEC §2): the
 * outer archive under the same hostile-input rules as a `.ctp`, the manifest hash, and, when
 * `trustedKeys` is given, the Ed25519 `CT-SIG-01` signatures over the 64-char hex digest string.
 * Such bundles are read, never written.
 */
export async function readLegacyCtp(src: string | Buffer, trustedKeys?: KeyObject[], limits?: Partial<TarLimits>): Promise<LegacyCtp> {
  const raw = await readCtpArchive(src, limits);
  const where = typeof src === 'string' ? src : '<buffer>';
  const manifest = raw.entries.get('manifest.ctp');
  const summaryEntry = raw.entries.get('summary.json');
  if (!manifest || !summaryEntry) throw new CtError('MANIFEST_INVALID', `${where}: not a legacy bundle (manifest.ctp and summary.json required)`, { where });
  let summary: Record<string, unknown>;
  try {
    summary = JSON.parse(summaryEntry.data!.toString('utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new CtError('MANIFEST_INVALID', `${where}: summary.json is not valid JSON`, { where, path: 'summary.json' }, { cause: e });
  }
  if (typeof summary !== 'object' || summary === null) throw new CtError('MANIFEST_INVALID', `${where}: summary.json is not an object`, { where, path: 'summary.json' });
  if (summary.ctp_version !== '1.0') {
    throw new CtError('UNSUPPORTED_VERSION', `${where}: summary.json ctp_version ${JSON.stringify(summary.ctp_version)} is not a legacy version this reader knows (1.0)`, { where, path: 'summary.json' });
  }
  const content = summary.content as Record<string, unknown> | undefined;
  const stated = content?.manifest_sha256;
  if (typeof stated !== 'string' || !HEX64.test(stated)) {
    throw new CtError('MANIFEST_INVALID', `${where}: summary.json content.manifest_sha256 must be 64 lowercase hex digits`, { where, path: 'summary.json', field: 'content.manifest_sha256' });
  }
  const actual = legacyManifestSha256(manifest.data!);
  if (actual !== stated) {
    throw new CtError('DIGEST_MISMATCH', `${where}: manifest.ctp hashes to ${actual}, summary.json says ${stated}`, { where, path: 'manifest.ctp', expected: stated, actual });
  }
  const atts = summary.attestations === undefined ? [] : summary.attestations;
  if (!Array.isArray(atts)) throw new CtError('MANIFEST_INVALID', `${where}: summary.json attestations must be an array`, { where, path: 'summary.json' });
  const trusted = (trustedKeys ?? []).map((k) => ({ key: k, id: keyIdOf(k) }));
  const signatures: LegacySignature[] = [];
  let sawUnknownKey = false;
  atts.forEach((a: Record<string, unknown>, i: number) => {
    if (typeof a !== 'object' || a === null || a.type !== 'signature') return;
    const at = `${where}: summary.json attestations[${i}]`;
    if (a.suite !== 'CT-SIG-01') throw new CtError('UNSUPPORTED_VERSION', `${at}: signature suite ${JSON.stringify(a.suite)} is not supported (CT-SIG-01)`, { where, index: i });
    if (typeof a.signature !== 'string' || !HEX128.test(a.signature)) throw new CtError('INVALID_SIGNATURE', `${at}: signature must be 128 lowercase hex digits`, { where, index: i });
    const keyId = typeof a.key_id === 'string' ? a.key_id : undefined;
    const sig: LegacySignature = { suite: 'CT-SIG-01', ...(keyId ? { keyId } : {}), valid: null };
    if (trustedKeys) {
      const candidates = keyId ? trusted.filter((t) => t.id === keyId) : trusted;
      if (keyId && candidates.length === 0) sawUnknownKey = true;
      const sigBytes = Buffer.from(a.signature, 'hex');
      const ok = candidates.find((t) => verifySig(null, Buffer.from(stated, 'ascii'), t.key, sigBytes));
      sig.valid = !!ok;
      if (ok) sig.verifiedBy = ok.id;
    }
    signatures.push(sig);
  });
  const verified = signatures.some((s) => s.valid === true);
  if (trustedKeys && !verified) {
    if (signatures.length === 0) throw new CtError('MISSING_ATTESTATION', `${where}: no CT-SIG-01 signature in summary.json`, { where });
    if (sawUnknownKey && signatures.every((s) => s.keyId && !trusted.some((t) => t.id === s.keyId))) {
      throw new CtError('UNKNOWN_KEY', `${where}: signed only by keys that are not trusted (${signatures.map((s) => s.keyId).join(', ')})`, { where });
    }
    throw new CtError('INVALID_SIGNATURE', `${where}: no signature verifies with a trusted key`, { where });
  }
  return {
    legacy: true,
    ctpVersion: '1.0',
    bundleDigest: raw.digest,
    compressed: raw.compressed,
    manifestText: manifest.data!.toString('utf8'),
    manifestSha256: stated,
    signatures,
    verified,
    files: [...raw.entries].map(([name, e]) => ({ name, size: e.size, sha256: e.sha256 })).sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0)),
  };
}
