/** How a decision is shown to people (`ct policy explain`) and recorded (SPEC §4 decision record). */
import { CODES, EXIT } from '../core/codes.js';
import type { DecisionRecord } from '../verify/evidence.js';
import type { Decision, PolicyInput, Violation } from './types.js';

function line(v: Violation): string {
  const where = v.at ? ` (${v.at.file}:${v.at.line}:${v.at.column})` : '';
  return `  - ${v.code} [${v.policy} ${v.rule}${v.mode !== 'strict' ? `, ${v.mode}` : ''}]${where}: ${v.message}`;
}

export function renderDecision(d: Decision): string {
  const out = [`decision: ${d.allow ? 'ALLOW' : 'DENY'} (mode ${d.mode})`, `policies applied: ${d.policies.join(', ') || 'none'}`, `policy set: ${d.policyDigest}`];
  if (d.violations.length) out.push('violations:', ...d.violations.map(line));
  if (d.warnings.length) out.push('warnings (not blocking):', ...d.warnings.map(line));
  return `${out.join('\n')}\n`;
}

/**
 * ct exit code for a decision: 0 allow; an integrity failure keeps its own code (SPEC §2, e.g.
 * INVALID_SIGNATURE → 2); every other denial is a policy rejection (4).
 */
export function exitCodeForDecision(d: Decision): number {
  if (d.allow) return EXIT.OK;
  const integrity = d.violations.find((v) => v.integrity && v.code in CODES);
  if (integrity) return CODES[integrity.code as keyof typeof CODES];
  const missing = d.violations.find((v) => v.code === 'MISSING_ATTESTATION');
  if (missing && d.violations.every((v) => v.code === 'MISSING_ATTESTATION')) return EXIT.MISSING_ATTESTATION;
  return EXIT.POLICY_REJECTION;
}

export function decisionRecord(d: Decision, input: PolicyInput, time = new Date()): DecisionRecord {
  return {
    time: time.toISOString(),
    imageDigest: input.evidence.imageDigest ?? null,
    bundleDigest: input.evidence.bundleDigest ?? null,
    decision: d.allow ? 'ALLOW' : 'REJECT',
    mode: d.mode,
    code: d.violations[0]?.code ?? null,
    warnings: d.warnings.map((w) => `${w.code}: ${w.message}`),
    policyDigest: d.policyDigest,
  };
}
