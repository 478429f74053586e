/**
 * Verification of a standalone VCS bundle (`ct vcs verify`, the server's upload path, the
 * benchmark): parse, verify, judge the requirements, and return the report with its decision
 * record. Never throws for a bad bundle: every outcome is a report with a code.
 */
import { CtError } from '../../core/errors.js';
import { sha256Digest } from '../../core/digest.js';
import type { Mode } from '../evidence.js';
import { combineReport, DEFAULT_REQUIREMENTS, rejectReport, type ReportBase, type Requirements, type TrustMaterial, type VerificationReport } from '../report.js';
import { parseVcsBundle } from './parse.js';
import { verifyParsedVcsBundle } from './verifier.js';

export interface VcsVerifyOptions {
  trust: TrustMaterial;
  /** Expected image digest; when absent the bundle's first subject is used. */
  imageDigest?: string;
  mode?: Mode;
  requirements?: Partial<Requirements>;
  allowLegacyPae?: boolean;
  now?: Date;
  policyDigest?: string;
}

export function verifyVcsBundle(input: Uint8Array | string, opts: VcsVerifyOptions): VerificationReport {
  const now = opts.now ?? new Date();
  const base: ReportBase = {
    imageDigest: opts.imageDigest ?? null,
    bundleDigest: sha256Digest(input),
    mode: opts.mode ?? 'strict',
    trust: opts.trust,
    ...(opts.policyDigest ? { policyDigest: opts.policyDigest } : {}),
    now,
  };
  const requirements: Requirements = { ...DEFAULT_REQUIREMENTS, ...opts.requirements };
  try {
    const parsed = parseVcsBundle(input);
    const result = verifyParsedVcsBundle(parsed, { imageDigest: opts.imageDigest, trust: opts.trust, allowLegacyPae: opts.allowLegacyPae ?? false, now });
    return combineReport({ ...base, imageDigest: result.imageDigest ?? base.imageDigest }, [result], requirements);
  } catch (e) {
    if (e instanceof CtError) return rejectReport(e, base);
    throw e;
  }
}
