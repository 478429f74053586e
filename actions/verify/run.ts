/**
 * The verify action, a pull-request gate: verify a .ctp (a file, or a reference fetched from a
 * registry) — signatures, logs, coverage — and judge it with a policy for one environment, the
 * way the deploy server would before running it. Reports outputs, a job summary and a commit
 * status; a deny fails the step unless fail-on-deny is false.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CtError } from '../../src/core/errors.js';
import { fetchCtp } from '../../src/oci/fetch.js';
import { loadTrustStore, trustStoreDigest } from '../../src/trust/store.js';
import type { TrustStore } from '../../src/trust/types.js';
import { verifyCtp } from '../../src/verify/ctp/verify-ctp.js';
import { defaultVerifiers } from '../../src/verify/ctp/verifiers.js';
import { loadTrustedRootFile, publicGoodTrustedRoot } from '../../src/verify/sigstore/trusted-root.js';
import type { TrustMaterial } from '../../src/verify/report.js';
import type { ActionIo } from '../build/io.js';
import { githubReporter, type StatusReporter } from '../build/status.js';
import { policyDecision } from '../build/policy-gate.js';
import { describeError, scrub } from '../build/errors.js';
import type { VerifyInputs } from './inputs.js';
import { cellCode, codeSpan } from '../../src/core/markdown.js';

export interface VerifyResult {
  ok: boolean;
  decision?: 'allow' | 'deny';
  code?: string;
  message?: string;
  imageDigest?: string;
  bundleDigest?: string;
  policies: string[];
  violations: { code: string; where: string; message: string }[];
  warnings: string[];
  signers: string[];
  error?: { code: string; message: string };
}

export function verifySummary(r: VerifyResult, i: Pick<VerifyInputs, 'environment' | 'source'>): string {
  const what = 'path' in i.source ? i.source.path : i.source.reference;
  const lines = [`## Cerro Torre verify: ${r.decision === 'allow' ? '✅ allowed' : r.decision === 'deny' ? '❌ denied' : '⚠️ error'} for ${codeSpan(i.environment)}`, ''];
  lines.push('| | |', '|---|---|', `| Bundle | ${cellCode(what)} |`);
  if (r.imageDigest) lines.push(`| Image digest | \`${r.imageDigest}\` |`);
  if (r.signers.length) lines.push(`| Signers | ${r.signers.map(cellCode).join(', ')} |`);
  if (r.policies.length) lines.push(`| Policies | ${r.policies.map(cellCode).join(', ')} |`);
  if (r.code) lines.push(`| Code | \`${r.code}\` |`);
  if (r.error) lines.push(`| Error | ${cellCode(r.error.code)} ${cellCode(r.error.message)} |`);
  lines.push('');
  if (r.violations.length) lines.push('### Violations', '', '| Code | Where | Message |', '|---|---|---|', ...r.violations.map((v) => `| ${cellCode(v.code)} | ${cellCode(v.where)} | ${cellCode(v.message)} |`), '');
  if (r.warnings.length) lines.push('### Warnings', '', ...r.warnings.map((w) => `- ${codeSpan(w)}`), '');
  return `${lines.join('\n')}\n`;
}

async function steps(i: VerifyInputs, io: ActionIo, r: VerifyResult): Promise<void> {
  let path: string;
  if ('path' in i.source) path = i.source.path;
  else {
    await mkdir(i.workDir, { recursive: true });
    path = join(i.workDir, `verify-${process.pid}.ctp`);
    const creds = i.registry.username !== undefined || i.registry.password !== undefined ? { credentials: { username: i.registry.username ?? '', password: i.registry.password ?? '' } } : {};
    await fetchCtp(i.source.reference, path, {
      ...creds,
      plainHttp: i.registry.plainHttp,
      ...(i.registry.allowedAddresses.length ? { allowedAddresses: i.registry.allowedAddresses } : {}),
      ...(i.registry.allowedRegistries.length ? { allowedRegistries: i.registry.allowedRegistries } : {}),
    });
    io.info(`fetched ${i.source.reference} → ${path}`);
  }
  const store: TrustStore = i.trustStore ? await loadTrustStore(i.trustStore) : { version: 1, keys: {} };
  const root = i.trustedRoot ? await loadTrustedRootFile(i.trustedRoot) : i.identity ? publicGoodTrustedRoot() : undefined;
  const trust: TrustMaterial = { store, storeDigest: trustStoreDigest(store), ...(root ? { trustedRoot: root, trustedRootDigest: root.digest } : {}) };
  // Audit mode: requirements (quorum, predicates, signers) are the policy's to judge; integrity
  // failures reject in every mode.
  const report = await verifyCtp(path, { trust, mode: 'audit', verifiers: defaultVerifiers({ ...(i.identity ? { policy: i.identity } : {}), ...(root ? { trustedRoot: root } : {}) }) });
  r.imageDigest = report.evidence?.imageDigest ?? undefined;
  r.bundleDigest = report.evidence?.bundleDigest;
  r.warnings.push(...report.warnings);
  r.signers = [...new Set((report.evidence?.attestations ?? []).flatMap((a) => a.signers.map((s) => (s.kind === 'key' ? s.keyId ?? 'key' : `${s.subject} (${s.issuer})`))))];
  const integrity = report.findings.filter((f) => f.integrity);
  if (report.decision === 'REJECT' && (integrity.length || !report.evidence)) {
    r.decision = 'deny';
    r.code = report.code ?? 'MALFORMED_BUNDLE';
    r.message = report.message;
    r.violations.push({ code: r.code, where: 'verification', message: report.message ?? '' });
    return;
  }
  if (report.decision === 'REJECT') throw new CtError((report.code ?? 'MALFORMED_BUNDLE') as never, report.message ?? 'verification failed', {});
  const d = await policyDecision(path, report, i.policy, i.environment, 'reference' in i.source ? i.source.reference : undefined);
  r.policies = d.policies;
  r.decision = d.allow ? 'allow' : 'deny';
  r.violations = d.violations.map((v) => ({ code: String(v.code), where: `${v.policy}/${v.rule}`, message: v.message }));
  r.warnings.push(...d.warnings.map((w) => `${w.policy}/${w.rule}: ${w.code} ${w.message}`));
  if (!d.allow) {
    r.code = String(d.violations[0]?.code ?? 'POLICY_VIOLATION');
    r.message = d.violations[0] ? `${d.violations[0].policy}/${d.violations[0].rule}: ${d.violations[0].message}` : 'denied by policy';
  }
  if ('reference' in i.source) await rm(path, { force: true });
}

export async function run(i: VerifyInputs, io: ActionIo, reporter: StatusReporter | undefined = githubReporter({ token: i.githubToken ?? '', ctx: i.ctx, sha: i.sha })): Promise<VerifyResult> {
  const secrets = [i.githubToken, i.registry.password].filter((s): s is string => !!s);
  secrets.forEach((s) => io.setSecret(s));
  const r: VerifyResult = { ok: false, policies: [], violations: [], warnings: [], signers: [] };
  try {
    await steps(i, io, r);
    r.ok = r.decision === 'allow' || !i.failOnDeny;
  } catch (e) {
    r.error = describeError(e);
    r.error.message = scrub(r.error.message, secrets);
  }
  if (reporter) {
    const description = r.error ? `${r.error.code}: ${r.error.message}` : r.decision === 'allow' ? `allowed for ${i.environment} by ${r.policies.join(', ') || 'policy'}` : `denied for ${i.environment}: ${r.code} ${r.message ?? ''}`;
    const why = await reporter({ state: r.error ? 'error' : r.decision === 'allow' ? 'success' : 'failure', context: i.statusContext, description: scrub(description, secrets) });
    if (why) r.warnings.push(why);
  }
  if (r.decision) io.setOutput('decision', r.decision);
  if (r.code) io.setOutput('code', r.code);
  if (r.imageDigest) io.setOutput('image-digest', r.imageDigest);
  if (r.bundleDigest) io.setOutput('bundle-digest', r.bundleDigest);
  io.setOutput('policies', JSON.stringify(r.policies));
  io.setOutput('violations', JSON.stringify(r.violations));
  for (const w of r.warnings) io.warning(scrub(w, secrets));
  await io.summary(scrub(verifySummary(r, i), secrets)).catch((e) => io.warning(`job summary not written: ${(e as Error).message}`));
  if (r.error) io.setFailed(`${r.error.code}: ${r.error.message}`);
  else if (!r.ok) io.setFailed(scrub(`${r.code}: denied for ${i.environment}: ${r.message ?? ''}`, secrets));
  return r;
}
