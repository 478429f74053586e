/**
 * Verification of a .ctp bundle: open (archive checks) → OCI layout (every blob digest, image
 * digest = manifest digest) → attestations (each registered verifier over the files it claims)
 * → VCS log entries of keyless attestations (vcs-log-entries.ts) → coverage (SPEC §2) → requirements and mode (report.ts). Returns a report for every outcome;
 * only a bug throws anything but a report.
 */
import { CtError } from '../../core/errors.js';
import { openCtpToVerify } from '../../bundle/read.js';
import { checkImageDigest, checkOciLayout } from '../../bundle/check-layout.js';
import type { CtpArchive } from '../../bundle/archive.js';
import type { Mode } from '../evidence.js';
import {
  combineReport,
  DEFAULT_REQUIREMENTS,
  rejectReport,
  type AttestationInput,
  type AttestationVerifier,
  type ReportBase,
  type Requirements,
  type TrustMaterial,
  type VerificationReport,
  type VerifierResult,
} from '../report.js';
import { cacheKey, type VerificationCache } from '../cache.js';
import { checkCoverage } from './coverage.js';
import { checkTarPadding } from './padding.js';
import { defaultVerifiers } from './verifiers.js';
import { NOT_VERIFIED_CODES } from '../batch/pool.js';
import { VCS_LOG_ENTRIES_PATH } from './vcs-log-entries-path.js';

export interface CtpVerifyOptions {
  trust: TrustMaterial;
  mode?: Mode;
  requirements?: Partial<Requirements>;
  allowLegacyPae?: boolean;
  now?: Date;
  policyDigest?: string;
  verifiers?: AttestationVerifier[];
  cache?: VerificationCache;
}

/** Verifies an opened archive (callers that already opened it, e.g. the server, start here). */
export async function verifyCtpArchive(archive: CtpArchive, opts: CtpVerifyOptions): Promise<VerificationReport> {
  const now = opts.now ?? new Date();
  const mode = opts.mode ?? 'strict';
  const requirements: Requirements = { ...DEFAULT_REQUIREMENTS, ...opts.requirements };
  // manifest.toml is not read here: an archive from openCtpToVerify has it parsed only once its
  // bytes are among the verified subjects; the image digest of reports comes from the checked layout.
  const base: ReportBase = {
    imageDigest: null,
    bundleDigest: archive.bundleDigest,
    mode,
    trust: opts.trust,
    ...(opts.policyDigest ? { policyDigest: opts.policyDigest } : {}),
    now,
  };
  const allowLegacyPae = opts.allowLegacyPae ?? false;
  const key = opts.cache
    ? cacheKey({
        // The bundle digest fixes every byte, manifest and image included.
        bundleDigest: archive.bundleDigest,
        imageDigest: '',
        trustStoreDigest: opts.trust.storeDigest,
        trustedRootDigest: opts.trust.trustedRootDigest,
        keylessDigest: opts.trust.keyless?.digest,
        policyDigest: opts.policyDigest,
        options: { mode, allowLegacyPae, requirements },
      })
    : undefined;
  if (opts.cache && key) {
    opts.cache.noteTrustStore(opts.trust.store);
    const hit = opts.cache.get(key, now);
    if (hit) {
      // The same bytes were verified under the same trust: their manifest.toml was a signed subject.
      if (hit.decision !== 'REJECT' && hit.evidence.coveredFiles) archive.authenticateManifest(hit.evidence.coveredFiles);
      return { ...hit, record: { ...hit.record, time: now.toISOString() } };
    }
  }
  const report = await verifyUncached(archive, opts, base, requirements, allowLegacyPae, now);
  // A verifier that could not run (a full or closed thread pool) gave no verdict to remember.
  if (opts.cache && key && !(report.code && NOT_VERIFIED_CODES.has(report.code))) opts.cache.set(key, report, opts.trust.store, now);
  return report;
}

async function verifyUncached(
  archive: CtpArchive,
  opts: CtpVerifyOptions,
  baseIn: ReportBase,
  requirements: Requirements,
  allowLegacyPae: boolean,
  now: Date,
): Promise<VerificationReport> {
  const warnings: string[] = [];
  let base = baseIn;
  // Kept outside the try: a rejection still says what the verifiers warned of (an attestation they
  // ignored is often why a file is uncovered).
  let results: VerifierResult[] = [];
  try {
    const image = checkOciLayout(archive, { imageDigest: 'later' });
    base = { ...base, imageDigest: image.manifestDigest };
    await checkTarPadding(archive);
    const imageDigest = image.manifestDigest;
    const verifiers = opts.verifiers ?? defaultVerifiers();
    const attestationFiles = [...archive.entries.keys()].filter((n) => n.startsWith('attestations/')).sort();
    // SPEC §4 "no bundle → MISSING_ATTESTATION", said as what it is: an unsigned bundle (it read as
    // UNCOVERED_FILE on manifest.toml). Rejected in every mode all the same: nothing authenticates
    // its manifest, so nothing of it may be judged, let alone run.
    if (attestationFiles.length === 0) {
      throw new CtError('MISSING_ATTESTATION', 'the bundle is not signed: it holds no attestations (sign it with ct sign, or build it with the CI step)', { path: 'attestations/' });
    }
    const claimed = new Set<string>();
    for (const v of verifiers) {
      const inputs: AttestationInput[] = attestationFiles.filter((n) => v.accepts(n)).map((n) => ({ name: n, data: archive.file(n) }));
      inputs.forEach((i) => claimed.add(i.name));
      if (inputs.length === 0) continue;
      results.push(await v.verify({ imageDigest, inputs, trust: opts.trust, allowLegacyPae, now }));
    }
    // VCS log entries of keyless attestations: verified after the attestations they prove
    // (signatures before log proofs, SPEC §4), then counted with their Rekor entries.
    if (archive.entries.has(VCS_LOG_ENTRIES_PATH) && !claimed.has(VCS_LOG_ENTRIES_PATH)) {
      claimed.add(VCS_LOG_ENTRIES_PATH);
      // Loaded here: it reads Sigstore bundles (@sigstore/*, slow to load) that most .ctps lack.
      const { applyVcsLogEntries } = await import('./vcs-log-entries.js');
      const vcsLogs = applyVcsLogEntries(archive, imageDigest, opts.trust.store, results);
      results = [...vcsLogs.results, { verifier: 'vcs-log-entries', attestations: [], findings: [], warnings: vcsLogs.warnings, logEntriesVerified: vcsLogs.verified }];
    }
    // A file under attestations/ that no verifier reads is bytes nobody signed or checked (#13 finding 5).
    const unread = attestationFiles.find((n) => !claimed.has(n));
    if (unread) throw new CtError('UNSIGNED_CONTENT', `${unread}: no verifier reads this file (a .ctp holds only the attestation files the format defines)`, { path: unread, what: 'unknown attestation file' });
    const covered = checkCoverage(
      archive,
      results.flatMap((r) => r.attestations),
    );
    // Authenticate before parsing: manifest.toml's digest is among the verified subjects (coverage
    // requires it); only now is it parsed, and its image_digest compared with the layout's.
    checkImageDigest(archive.authenticateManifest(covered), image);
    return combineReport(base, results, requirements, { coveredFiles: covered, warnings });
  } catch (e) {
    if (e instanceof CtError) return rejectReport(e, base, [...warnings, ...results.flatMap((r) => r.warnings)]);
    throw e;
  }
}

/** Opens and verifies a .ctp (path or bytes). */
export async function verifyCtp(src: string | Buffer, opts: CtpVerifyOptions): Promise<VerificationReport> {
  let archive: CtpArchive;
  try {
    archive = await openCtpToVerify(src);
  } catch (e) {
    if (e instanceof CtError) {
      return rejectReport(e, { imageDigest: null, mode: opts.mode ?? 'strict', trust: opts.trust, ...(opts.policyDigest ? { policyDigest: opts.policyDigest } : {}), now: opts.now ?? new Date() });
    }
    throw e;
  }
  return verifyCtpArchive(archive, opts);
}
