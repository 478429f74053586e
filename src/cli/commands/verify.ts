/**
 * `ct verify BUNDLE.ctp`: verifies a .ctp (OCI layout, attestations, coverage, requirements) and
 * prints a readable report (or JSON). Exit codes from SPEC §2 via core/codes.ts; the decision
 * record is appended as one JSON line to --audit-log.
 */
import type { Command } from 'commander';
import { appendFile, readFile } from 'node:fs/promises';
import { action, processIo } from '../io.js';
import { CtError, asIoError } from '../../core/errors.js';
import { exitCodeFor } from '../../core/codes.js';
import { loadTrustStore, trustStoreDigest } from '../../trust/store.js';
import type { Mode } from '../../verify/evidence.js';
import type { Requirements, VerificationReport } from '../../verify/report.js';
import { verifyCtp } from '../../verify/ctp/verify-ctp.js';
import { defaultVerifiers } from '../../verify/ctp/verifiers.js';
import { parseSvalinnPolicyText } from '../../verify/vcs/svalinn-v1.js';
import { loadTrustedRootFile } from '../../verify/sigstore/trusted-root.js';

interface VerifyOptions {
  trustStore?: string;
  policy?: string;
  mode?: string;
  logQuorum?: string;
  legacyPae?: boolean;
  auditLog?: string;
  json?: boolean;
  certificateIdentity?: string;
  certificateIdentityRegexp?: string;
  certificateOidcIssuer?: string;
  trustedRoot?: string;
  anySignerRole?: boolean;
}

const MODES: Mode[] = ['strict', 'permissive', 'audit'];

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
  program
    .command('verify')
    .description('verify a .ctp bundle: image digests, attestations, transparency logs, file coverage, policy')
    .argument('<bundle>', '.ctp file')
    .option('--trust-store <file>', 'VCS trust store JSON (required)')
    .option('--policy <file>', 'Svalinn v1 policy JSON (requiredPredicates, allowedSigners, logQuorum, mode)')
    .option('--mode <mode>', 'strict | permissive | audit (default: the policy\'s mode, else strict)')
    .option('--log-quorum <n>', 'distinct trusted log operators required per attestation (default: policy, else 2)')
    .option('--any-signer-role', 'count attestations signed by any trusted key, whatever its role (default: builders sign build attestations; see docs/keys-and-trust-stores.md)')
    .option('--legacy-pae', 'accept signatures over the legacy PAE of the upstream MVP producer (reported)')
    .option('--audit-log <file>', 'append the decision record as one JSON line')
    .option('--certificate-identity <san>', 'Sigstore: accepted certificate SAN (exact)')
    .option('--certificate-identity-regexp <re>', 'Sigstore: accepted SAN pattern (anchored)')
    .option('--certificate-oidc-issuer <url>', 'Sigstore: accepted OIDC issuer (exact)')
    .option('--trusted-root <file>', 'Sigstore TrustedRoot JSON (default: the public-good root shipped offline)')
    .option('--json', 'print the report as JSON')
    .action(
      action(async (bundle: string, o: VerifyOptions) => {
        if (!o.trustStore) throw new CtError('USAGE', 'ct verify needs --trust-store', {});
        if (o.mode !== undefined && !(MODES as string[]).includes(o.mode)) throw new CtError('USAGE', `--mode must be one of ${MODES.join(', ')}`, { mode: o.mode });
        const store = await loadTrustStore(o.trustStore);
        let policyText: string | undefined;
        if (o.policy) {
          try {
            policyText = await readFile(o.policy, 'utf8');
          } catch (e) {
            throw asIoError(e, o.policy);
          }
        }
        const policy = policyText !== undefined ? parseSvalinnPolicyText(policyText, o.policy) : undefined;
        const requirements: Partial<Requirements> = { ...policy?.requirements };
        if (o.anySignerRole) requirements.signerRoles = 'any';
        if (o.logQuorum !== undefined) {
          const n = Number(o.logQuorum);
          if (!Number.isSafeInteger(n) || n < 1) throw new CtError('USAGE', '--log-quorum must be an integer ≥ 1', { value: o.logQuorum });
          requirements.logQuorum = n;
        }
        const root = o.trustedRoot ? await loadTrustedRootFile(o.trustedRoot) : undefined;
        const identity = o.certificateOidcIssuer
          ? { issuer: o.certificateOidcIssuer, ...(o.certificateIdentity ? { subject: o.certificateIdentity } : {}), ...(o.certificateIdentityRegexp ? { subjectRegExp: o.certificateIdentityRegexp } : {}) }
          : undefined;
        const mode = (o.mode as Mode | undefined) ?? policy?.mode ?? 'strict';
        const report = await verifyCtp(bundle, {
          trust: { store, storeDigest: trustStoreDigest(store), ...(root ? { trustedRoot: root, trustedRootDigest: root.digest } : {}) },
          mode,
          requirements,
          allowLegacyPae: Boolean(o.legacyPae),
          ...(policy ? { policyDigest: policy.digest } : {}),
          verifiers: defaultVerifiers({ ...(identity ? { policy: identity } : {}), ...(root ? { trustedRoot: root } : {}) }),
        });
        if (policy) report.warnings.unshift(...policy.warnings);
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
