/**
 * The policy decision the actions share (build pre-check before publishing, the verify action's
 * pull-request gate): the verified evidence of a .ctp plus its declared facts, judged by the same
 * engine the deploy server runs, for one target environment. Requirements are the policy's to
 * judge, so verification runs in audit mode: only integrity failures reject before the policy.
 */
import { loadPolicies } from '../../src/policy/load.js';
import { evaluate } from '../../src/policy/evaluate.js';
import { readBundleFacts } from '../../src/policy/bundle-facts.js';
import type { Decision } from '../../src/policy/types.js';
import type { VerificationReport } from '../../src/verify/report.js';

export async function policyDecision(ctpPath: string, report: VerificationReport, policyPaths: string[], environment: string, fetchedReference?: string): Promise<Decision> {
  const { set } = await loadPolicies(policyPaths);
  return evaluate(set, {
    evidence: { ...report.evidence, ...(fetchedReference ? { fetchedReference } : {}) },
    manifest: await readBundleFacts(ctpPath),
    host: { environment },
    findings: report.findings.filter((f) => f.integrity),
  });
}

/** `CODE policy/rule: message` of the first violation (what annotations and statuses show). */
export function firstViolation(d: Decision): string {
  const v = d.violations[0];
  return v ? `${v.code} ${v.policy}/${v.rule}: ${v.message}` : 'denied by policy';
}
