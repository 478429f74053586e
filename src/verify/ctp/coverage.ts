/**
 * "Everything in the bundle is signed" (SPEC §2): every file outside `oci-layout/` and
 * `attestations/` must be a subject (path + sha256) of at least one verified attestation, and every
 * file an attestation names must be present with that digest. Otherwise a swapped
 * `security/seccomp.json`, a removed profile or a raised capability in `manifest.toml` would pass.
 */
import { CtError } from '../../core/errors.js';
import type { CtpArchive } from '../../bundle/archive.js';
import type { VerifiedAttestation } from '../evidence.js';

/** Paths whose files attestations must cover. */
export function mustBeCovered(name: string): boolean {
  return !name.startsWith('oci-layout/') && !name.startsWith('attestations/');
}

/**
 * Subject names that denote files of the .ctp (rather than the image's reference). The layout's
 * two non-content-addressed files are not required to be covered (SPEC §2 names only files outside
 * oci-layout/), but `ct sign` names them, and a named file must then match.
 */
function isFileSubject(name: string): boolean {
  return name === 'manifest.toml' || name.startsWith('security/') || name.startsWith('signatures/') || LAYOUT_FILES.has(name);
}

export const LAYOUT_FILES: ReadonlySet<string> = new Set(['oci-layout/index.json', 'oci-layout/oci-layout']);

/** Checks coverage; returns covered file → `sha256:<hex>`. Throws UNCOVERED_FILE / DIGEST_MISMATCH. */
export function checkCoverage(archive: CtpArchive, atts: VerifiedAttestation[]): Record<string, string> {
  const claimed = new Map<string, { digest: string; by: string }[]>();
  for (const a of atts) {
    for (const s of a.subjects) {
      if (typeof s.name !== 'string' || !s.digest.sha256) continue;
      const list = claimed.get(s.name) ?? [];
      list.push({ digest: s.digest.sha256, by: a.digest });
      claimed.set(s.name, list);
    }
  }
  const covered: Record<string, string> = {};
  const names = [...archive.entries.keys()].filter((n) => mustBeCovered(n) || (LAYOUT_FILES.has(n) && claimed.has(n))).sort();
  for (const name of names) {
    const e = archive.entries.get(name)!;
    const claims = claimed.get(name);
    if (!claims) throw new CtError('UNCOVERED_FILE', `${name}: no verified attestation covers this file (sha256:${e.sha256})`, { path: name, actual: `sha256:${e.sha256}` });
    const wrong = claims.find((c) => c.digest !== e.sha256);
    if (wrong) {
      throw new CtError('DIGEST_MISMATCH', `${name}: content is sha256:${e.sha256}, attestation ${wrong.by} signed sha256:${wrong.digest}`, {
        path: name,
        expected: `sha256:${wrong.digest}`,
        actual: `sha256:${e.sha256}`,
        attestation: wrong.by,
      });
    }
    covered[name] = `sha256:${e.sha256}`;
  }
  for (const [name, claims] of claimed) {
    if (isFileSubject(name) && !archive.entries.has(name)) {
      throw new CtError('DIGEST_MISMATCH', `${name}: signed by attestation ${claims[0].by} but missing from the bundle`, { path: name, expected: `sha256:${claims[0].digest}`, actual: null });
    }
  }
  return covered;
}
