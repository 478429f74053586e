/**
 * `ct verify BUNDLE.ctp…`: verifies .ctp bundles (OCI layout, attestations, coverage,
 * requirements; several on worker threads, ../verify-batch.ts) and prints a readable report per
 * bundle (or JSON). Exit codes from SPEC §2 via core/codes.ts; the decision
 * record is appended as one JSON line to --audit-log.
 */
import type { Command } from 'commander';
import { appendFile } from 'node:fs/promises';
import { action, processIo } from '../io.js';
import { CtError, asIoError } from '../../core/errors.js';
import { exitCodeFor } from '../../core/codes.js';
import type { VerificationReport } from '../../verify/report.js';
import { verifyCtp } from '../../verify/ctp/verify-ctp.js';
import { addVerifyOptions, verifyOptionsFrom, type VerifyFlags } from '../verify-options.js';
import { threadsFor, verifyBatch } from '../verify-batch.js';

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

/** Appends the decision record as one JSON line to --audit-log. */
async function audit(path: string | undefined, report: VerificationReport): Promise<void> {
  if (!path) return;
  try {
    await appendFile(path, `${JSON.stringify(report.record)}\n`, { mode: 0o600 });
  } catch (e) {
    throw asIoError(e, path);
  }
}

function jsonOf(report: VerificationReport): Record<string, unknown> {
  return { decision: report.decision, code: report.code, message: report.message, mode: report.mode, record: report.record, warnings: report.warnings, evidence: report.evidence };
}

export function register(program: Command): void {
  const cmd = program
    .command('verify')
    .description('verify .ctp bundles: image digests, attestations, transparency logs, file coverage, policy')
    .argument('<bundle...>', '.ctp file(s); several are verified on one thread per core');
  addVerifyOptions(cmd)
    .option('--audit-log <file>', 'append the decision record as one JSON line')
    .option('--json', 'print the report as JSON (an array of {bundle, …} for several bundles)')
    .option('--threads <n>', 'verification threads for several bundles (default: one per core for 8+ bundles of 64 MiB or more in all, else 1 = this thread)')
    .action(
      action(async (bundles: string[], o: VerifyOptions & { threads?: string }) => {
        if (bundles.length === 1) {
          const { options, policyWarnings } = await verifyOptionsFrom('verify', o);
          const report = await verifyCtp(bundles[0], options);
          report.warnings.unshift(...policyWarnings);
          await audit(o.auditLog, report);
          if (o.json) processIo.out(JSON.stringify(jsonOf(report), null, 2));
          else if (report.decision === 'ALLOW') processIo.out(formatReport(bundles[0], report));
          else processIo.err(formatReport(bundles[0], report));
          return report.decision === 'ALLOW' ? 0 : exitCodeFor(report.code ?? 'USAGE');
        }
        const requested = o.threads === undefined ? undefined : Number(o.threads);
        if (requested !== undefined && !(Number.isSafeInteger(requested) && requested >= 1 && requested <= 256)) throw new CtError('USAGE', '--threads must be an integer from 1 to 256', { value: o.threads });
        // The first failure sets the exit code; every bundle is still verified and reported.
        let exit = 0;
        const json: Record<string, unknown>[] = [];
        await verifyBatch(bundles, o, await threadsFor(bundles, requested), async (r) => {
          if ('error' in r) {
            exit ||= exitCodeFor(r.error.code);
            if (o.json) json.push({ bundle: r.path, error: r.error.toJSON() });
            else processIo.err(`error[${r.error.code}]: ${r.path}: ${r.error.message}`);
            return;
          }
          await audit(o.auditLog, r.report);
          if (r.report.decision !== 'ALLOW') exit ||= exitCodeFor(r.report.code ?? 'USAGE');
          if (o.json) json.push({ bundle: r.path, ...jsonOf(r.report) });
          else if (r.report.decision === 'ALLOW') processIo.out(formatReport(r.path, r.report));
          else processIo.err(formatReport(r.path, r.report));
        });
        if (o.json) processIo.out(JSON.stringify(json, null, 2));
        return exit;
      }),
    );
}
