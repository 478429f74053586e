/**
 * The job summary (GITHUB_STEP_SUMMARY) and the one-line status description of a build: what was
 * signed, by which identity, where it was logged, how it verified, where it went. Pure functions
 * of the result, so the wording is tested without a runner.
 */
import type { BuildResult } from './result.js';
import { cellCode, codeSpan, tableCell } from '../../src/core/markdown.js';

const cell = tableCell;
const code = cellCode;
const short = (d: string | undefined): string => (d ? `${d.slice(0, 19)}…` : '');

export function buildSummary(r: BuildResult): string {
  const lines: string[] = [];
  const title = r.name ? `${r.name} ${r.version ?? ''}`.trim() : 'bundle';
  lines.push(`## Cerro Torre build: ${r.ok ? '✅' : '❌'} ${cell(title)}`, '');
  if (r.error) lines.push(`**Failed** (${code(r.error.code)}): ${codeSpan(r.error.message)}`, '');
  const facts: [string, string][] = [];
  if (r.bundlePath) facts.push(['Bundle', code(r.bundlePath)]);
  if (r.bundleDigest) facts.push(['Bundle digest', code(r.bundleDigest)]);
  if (r.imageDigest) facts.push(['Image digest', code(r.imageDigest)]);
  facts.push(['Signing', r.signing === 'keyless' ? 'keyless (Sigstore)' : 'key']);
  if (r.identity?.subject || r.identity?.issuer) facts.push(['Identity', `${code(r.identity.subject)} issued by ${code(r.identity.issuer)}`]);
  if (r.identity?.keyId) facts.push(['Key', code(r.identity.keyId)]);
  if (r.verification) {
    const v = r.verification;
    facts.push(['Verification', `${v.decision}${v.code ? ` ${code(v.code)}` : ''}${v.message ? `: ${code(v.message)}` : ''}${v.logEntriesVerified !== undefined ? ` (${v.logEntriesVerified} log entries verified)` : ''}`]);
  }
  if (r.policy) facts.push(['Policy', `${r.policy.allow ? 'allowed' : 'denied'}${r.policy.policies.length ? ` by ${r.policy.policies.map(code).join(', ')}` : ''}${r.policy.message ? `: ${code(r.policy.message)}` : ''}`]);
  if (r.pushed) facts.push(['Pushed', code(r.pushed.reference)]);
  lines.push('| | |', '|---|---|', ...facts.map(([k, v]) => `| ${k} | ${v} |`), '');
  if (r.attestations.length) {
    lines.push('### Attestations', '', '| Predicate | File | Digest | Rekor | VCS logs |', '|---|---|---|---|---|');
    for (const a of r.attestations) {
      const vcs = a.logs.map((l) => (l.ok ? `${cell(l.logId)} #${l.logIndex}` : `${cell(l.logId)} failed`)).join(', ') || '—';
      lines.push(`| ${code(a.predicateType)} | ${code(a.path)} | ${code(short(a.digest))} | ${a.rekorLogIndex !== undefined ? `#${a.rekorLogIndex}` : '—'} | ${vcs} |`);
    }
    lines.push('');
  }
  if (r.warnings.length) lines.push('### Warnings', '', ...r.warnings.map((w) => `- ${codeSpan(w)}`), '');
  return `${lines.join('\n')}\n`;
}

/** The commit status line (statusDescription() cuts it to GitHub's 140 characters). */
export function buildStatusLine(r: BuildResult): string {
  if (!r.ok) return `${r.error?.code ?? 'ERROR'}: ${r.error?.message ?? 'build failed'}`;
  const logs = r.attestations[0] ? [r.attestations[0].rekorLogIndex !== undefined ? 'Rekor' : '', ...r.attestations[0].logs.filter((l) => l.ok).map((l) => l.logId)].filter(Boolean) : [];
  return `${r.name} ${r.version} signed ${r.signing === 'keyless' ? 'keylessly' : 'with a key'}: ${r.attestations.length} attestation(s), logs ${logs.join(', ') || 'none'}${r.verification ? `, verify ${r.verification.decision}` : ''}${r.pushed ? ', pushed' : ''}`;
}
