/**
 * Evidence for `ct policy explain BUNDLE.ctp` straight from the .ctp verifier (src/verify/ctp):
 * it proves what it can and the policy decides the rest. The verifier is asked for no
 * requirements of its own (no required predicates, quorum 1, no thresholds) in audit mode, so
 * that requirement findings come from the policies alone; integrity findings are kept and deny.
 */
import { verifyCtp, type CtpVerifyOptions } from '../verify/ctp/index.js';
import type { TrustMaterial } from '../verify/report.js';
import type { Evidence, Finding } from '../verify/evidence.js';

export interface CtpEvidence {
  evidence: Evidence;
  /** Integrity findings only (requirement findings are the policies' business). */
  findings: Finding[];
  warnings: string[];
}

export async function evidenceFromCtp(path: string, trust: TrustMaterial, opts: Pick<CtpVerifyOptions, 'allowLegacyPae' | 'verifiers' | 'now'> = {}): Promise<CtpEvidence> {
  const report = await verifyCtp(path, {
    ...opts,
    trust,
    mode: 'audit',
    requirements: { requiredPredicates: [], logQuorum: 1, checkThresholds: false },
  });
  return { evidence: report.evidence, findings: report.findings.filter((f) => f.integrity), warnings: report.warnings };
}
