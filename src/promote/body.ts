/**
 * The pull / merge request a reviewer reads: title, and a body rendered from PromotionEvidence
 * (never pasted from tool output). Deterministic — no clock in it — so that a rerun for the same
 * bundle produces the same body and changes nothing. Bounded below GitHub's 65,536-character limit.
 */
import { boundText } from '../core/errors.js';
import { cellCode, codeSpan } from '../core/markdown.js';
import type { BundlePin } from './desired-edit.js';
import type { PromotionEvidence, SetDiff } from './evidence.js';

export const MAX_BODY = 60_000;
const MAX_ITEMS = 60;

const code = codeSpan;
const cell = cellCode;

function list(items: readonly string[], fmt: (s: string) => string = code): string[] {
  const shown = items.slice(0, MAX_ITEMS).map((x) => `- ${fmt(x)}`);
  if (items.length > MAX_ITEMS) shown.push(`- … and ${items.length - MAX_ITEMS} more`);
  return shown;
}

function diffSection(title: string, d: SetDiff, unit: string): string[] {
  if (!d.added.length && !d.removed.length) return [`**${title}:** no ${unit} added or removed.`];
  return [`**${title}:**`, ...(d.added.length ? [`added (${d.added.length}):`, ...list(d.added.map((x) => `+ ${x}`))] : []), ...(d.removed.length ? [`removed (${d.removed.length}):`, ...list(d.removed.map((x) => `- ${x}`))] : [])];
}

export function promotionTitle(pin: BundlePin, e: PromotionEvidence): string {
  const what = e.bundle.name ? `${e.bundle.name}${e.bundle.version ? ` ${e.bundle.version}` : ''}` : pin.app;
  return `Promote ${pin.app} to ${pin.environment}: ${what} (${e.bundle.imageDigest.slice(7, 19)})`.slice(0, 256);
}

/** A marker the promotion finds its own pull requests by (and a reviewer can ignore). */
export function marker(pin: BundlePin): string {
  return `<!-- cerro-torre:promote environment=${pin.environment} app=${pin.app} -->`;
}

export function renderPromotionBody(pin: BundlePin, previous: { bundle: string; bundleDigest?: string } | undefined, e: PromotionEvidence, file: string): string {
  const p = e.policy;
  const out: string[] = [
    marker(pin),
    `## Promote \`${pin.app}\` to \`${pin.environment}\``,
    '',
    `| | |`,
    `|---|---|`,
    `| file | ${cell(file)} |`,
    `| from | ${previous ? cell(previous.bundle) : 'nothing (new)'} |`,
    `| to | ${cell(pin.bundle)} |`,
    ...(pin.bundleDigest ? [`| .ctp digest | ${cell(pin.bundleDigest)} |`] : []),
    `| bundle | ${e.bundle.name ? cell(`${e.bundle.name} ${e.bundle.version ?? ''}`.trim()) : '?'} |`,
    ...(e.verifiedIn?.length ? [`| ran in | ${e.verifiedIn.map(cell).join(', ')} (deploy VSAs signed by a \`deployers\` key, verified) |`] : []),
    `| source commit | ${e.source ? `${cell(e.source.commit)}${e.source.repository ? ` in ${cell(e.source.repository)}` : ''}` : 'not attested'} |`,
    `| policy for ${cell(pin.environment)} | **${p.allow ? 'ALLOW' : 'DENY'}**${p.firstViolation ? ` — ${cell(p.firstViolation)}` : ''} |`,
    '',
    '### Signers',
    ...(e.signers.length ? e.signers.map((s) => s.kind === 'key'
      ? `- key ${code(s.identity)}${s.roles ? ` (trust-store roles: ${s.roles.join(', ')})` : ''}`
      : `- ${code(s.identity)} issued by ${code(s.issuer ?? '?')}${s.workflow ? `, workflow ${code(s.workflow)}` : ''}`) : ['- none verified']),
    ...(e.integrity.length ? ['', '**Integrity failures:**', ...list(e.integrity.map((f) => `${f.code}: ${f.message}`))] : []),
    '',
    '### Transparency-log entries',
    ...(e.logs.length ? e.logs.map((l) => `- ${l.operator}: ${l.entries.map((x) => `${code(x.logId)} #${x.logIndex}${x.kind === 'rekor' ? ' (Rekor)' : ''}`).join(', ')}`) : ['- none verified']),
    '',
    `### Changes against what runs now${e.baseline.bundle ? ` (${code(e.baseline.bundle)})` : ''}`,
    ...(e.baseline.compared ? [] : [`Nothing to compare with: ${e.baseline.reason ?? 'unknown'}; everything below is listed as added.`, '']),
    ...(e.sbom.added.length || e.sbom.removed.length || e.sbom.changed.length
      ? [
          '**SBOM packages:**',
          ...(e.sbom.added.length ? [`added (${e.sbom.added.length}):`, ...list(e.sbom.added)] : []),
          ...(e.sbom.removed.length ? [`removed (${e.sbom.removed.length}):`, ...list(e.sbom.removed)] : []),
          ...(e.sbom.changed.length ? [`changed versions (${e.sbom.changed.length}):`, ...list(e.sbom.changed.map((c) => `${c.name} ${c.from} → ${c.to}`))] : []),
        ]
      : ['**SBOM packages:** no change.']),
    '',
    ...diffSection('Seccomp syscalls allowed', e.seccomp, 'syscall'),
    '',
    ...diffSection('AppArmor rules', e.apparmor, 'rule'),
    '',
    `### Policy decision for \`${pin.environment}\` (\`ct policy explain\`)`,
    '```',
    p.explanation.trimEnd().replace(/```/g, "'''"),
    '```',
  ];
  const body = out.join('\n');
  // Cut by the shared bound: never inside a surrogate pair, and it says how much was cut.
  return boundText(body, MAX_BODY);
}
