/**
 * `ct verify BUNDLE.ctp`: verifies a .ctp (OCI layout, attestations, coverage, requirements) and
 * prints a readable report (or JSON). Exit codes from SPEC §2 via core/codes.ts; the decision
 * record is appended as one JSON line to --audit-log.
 */
import type { Command } from 'commander';
import { appendFile } from 'node:fs/promises';
import { action, processIo } from '../io.js';
import { asIoError } from '../../core/errors.js';
import { exitCodeFor } from '../../core/codes.js';
import type { VerificationReport } from '../../verify/report.js';
import { verifyCtp } from '../../verify/ctp/verify-ctp.js';
import { addVerifyOptions, verifyOptionsFrom, type VerifyFlags } from '../verify-options.js';

interface VerifyOptions extends VerifyFlags {
  auditLog?: string;
  json?: boolean;
}

export function formatReport(path: string, r: VerificationReport): string {
  const lines: string[] = [];
  lines.push(`${r.decision === 'ALLOW' ? 'VERIFIED' : 'REJECTED'}: ${path}${r.code ? ` [${r.code}]` : ''}`);
  lines.push(`  image:   ${r.record.imageDigest ?? '(unknown)'}`);
  if (r.record.bundleDigest) lines.push(`  bundle:  ${r.record.bundleDigest}`);
  lines.push(`  mode:    ${r.mode}`);
  if (r.message) lines.push(`  reason:  ${r.message}`);
  for (const a of r.evidence.attestations) {
    const who = a.signers.map((s) => s.keyId ?? `${s.subject} (${s.issuer})`).join(', ');
    lines.push(`  attestation ${a.predicateType}${a.legacyPae ? ' (legacy PAE)' : ''}`);
    lines.push(`    signed by ${who}; logs: ${a.logOperators.join(', ') || 'none'}`);
  }
  for (const [name, d] of Object.entries(r.evidence.coveredFiles ?? {})) lines.push(`  covered  ${name} ${d}`);
  if (r.thresholdsMet.length) lines.push(`  thresholds met: ${r.thresholdsMet.join(', ')}`);
  for (const w of r.warnings) lines.push(`  warning: ${w}`);
  return lines.join('\n');
}

export function register(program: Command): void {
  const cmd = program
    .command('verify')
    .description('verify a .ctp bundle: image digests, attestations, transparency logs, file coverage, policy')
    .argument('<bundle>', '.ctp file');
  addVerifyOptions(cmd)
    .option('--audit-log <file>', 'append the decision record as one JSON line')
    .option('--json', 'print the report as JSON')
    .action(
      action(async (bundle: string, o: VerifyOptions) => {
        const { options, policyWarnings } = await verifyOptionsFrom('verify', o);
        const report = await verifyCtp(bundle, options);
        report.warnings.unshift(...policyWarnings);
        if (o.auditLog) {
          try {
            await appendFile(o.auditLog, `${JSON.stringify(report.record)}\n`, { mode: 0o600 });
          } catch (e) {
            throw asIoError(e, o.auditLog);
          }
        }
        if (o.json) processIo.out(JSON.stringify({ decision: report.decision, code: report.code, message: report.message, mode: report.mode, record: report.record, warnings: report.warnings, evidence: report.evidence }, null, 2));
        else if (report.decision === 'ALLOW') processIo.out(formatReport(bundle, report));
        else processIo.err(formatReport(bundle, report));
        return report.decision === 'ALLOW' ? 0 : exitCodeFor(report.code ?? 'USAGE');
      }),
    );
}
