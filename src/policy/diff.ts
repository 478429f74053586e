/**
 * `ct policy diff BASE HEAD --against DEPLOYMENTS`: evaluates every live deployment under the base
 * and the head policy sets and reports which would turn from allowed to denied (or back), as a
 * markdown table for the pull-request comment. The deployments file is what the deploy server
 * exports at `GET /api/v1/deployments?format=evidence` (format in docs/policy.md).
 */
import { open } from 'node:fs/promises';
import { CtError, asIoError, boundText } from '../core/errors.js';
import { cellCode, codeSpan, tableCell } from '../core/markdown.js';
import { evaluate } from './evaluate.js';
import { readPolicyInput } from './input.js';
import type { PolicySet } from './policy-set.js';
import { MAX_JSON_DEPTH, parseJson } from '../core/json.js';
import { MAX_POLICY_FILE_BYTES, parseSource, type ParsedSource } from './source.js';
import type { Decision, PolicyInput } from './types.js';

export interface Deployment {
  id: string;
  environment: string;
  app: string;
  imageDigest: string;
  input: PolicyInput;
}

export type Change = 'now-denied' | 'now-allowed' | 'reasons-changed' | 'unchanged';

export interface DiffRow {
  id: string;
  app: string;
  environment: string;
  imageDigest: string;
  before: Decision;
  after: Decision;
  change: Change;
}

export interface PolicyChange {
  name: string;
  change: 'added' | 'removed' | 'modified';
}

export interface DiffResult {
  rows: DiffRow[];
  policies: PolicyChange[];
  counts: Record<Change, number>;
}

/* eslint-disable @typescript-eslint/no-explicit-any -- untrusted JSON walked by field name */
/**
 * How large a deployments export may be. It carries every live deployment's evidence, SBOM
 * predicates included (megabytes for a large image): the 1 MiB bound of a policy file would refuse
 * a real fleet's export. Up to that bound it is read with positions (errors at file:line:column,
 * YAML accepted); beyond it, as the JSON the server writes (errors name the field's path).
 */
export const MAX_DEPLOYMENTS_BYTES = 256 * 1024 * 1024;

/**
 * How deep an export may nest: a predicate sits 7 levels down (deployments, the deployment, evidence,
 * attestations, the attestation, predicate) and may itself nest as deep as any JSON input
 * (parseStatement's bound).
 */
const MAX_DEPLOYMENTS_DEPTH = MAX_JSON_DEPTH + 8;

const tooLarge = (file: string, limit = MAX_DEPLOYMENTS_BYTES) => new CtError('JSON_INVALID', `${file}: larger than ${limit} bytes`, { file, limit });

function deploymentsSource(file: string, text: string, positions: boolean): ParsedSource {
  if (text.length > MAX_DEPLOYMENTS_BYTES) throw tooLarge(file);
  // Bytes, as parseSource counts them: a shorter text of more bytes was refused as too large.
  if (positions && Buffer.byteLength(text, 'utf8') <= MAX_POLICY_FILE_BYTES) {
    // The export can be a link a merge request committed (to .git/config): no text of it in messages.
    const parsed = parseSource(file, text, { quoteText: false });
    if (!parsed.source) throw new CtError('JSON_INVALID', `${file}: ${parsed.issues[0]?.message ?? 'unreadable'}`, { issues: parsed.issues });
    return parsed.source;
  }
  // A byte order mark, as the YAML reader of smaller exports accepts it.
  const value = parseJson(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text, file, 'JSON_INVALID', MAX_DEPLOYMENTS_DEPTH);
  const start = () => ({ file, line: 1, column: 1 });
  return { file, value, locate: start, locateKey: start };
}

/**
 * The deployments of an export (`{deployments: [...]}`). `positions: false` skips the positions
 * (the server's own live records, which no one edits: a YAML parse of a fleet's evidence cost most
 * of a second).
 */
export function parseDeployments(file: string, text: string, o: { positions?: boolean } = {}): Deployment[] {
  const src = deploymentsSource(file, text, o.positions ?? true);
  const doc = src.value as any;
  if (!doc || typeof doc !== 'object' || !Array.isArray(doc.deployments)) {
    const at = src.locate([]);
    throw new CtError('JSON_INVALID', `${file}:${at.line}:${at.column}: expected {deployments: [...]}`, { file });
  }
  return doc.deployments.map((d: any, i: number) => {
    const at = src.locate(['deployments', i]);
    const where = `${file}:${at.line}:${at.column}`;
    if (!d || typeof d !== 'object' || typeof d.id !== 'string' || typeof d.environment !== 'string') throw new CtError('JSON_INVALID', `${where}: deployments[${i}] needs id and environment strings`, { file, index: i });
    const host = { ...(d.hostFacts ?? {}), environment: d.hostFacts?.environment ?? d.environment };
    const read = readPolicyInput({ evidence: d.evidence, manifest: d.manifest ?? {}, host, findings: d.findings, now: d.now }, src, ['deployments', i]);
    if (!read.input) {
      const first = read.issues[0];
      throw new CtError('JSON_INVALID', `${first.file}:${first.line}:${first.column}: ${first.message}`, { issues: read.issues });
    }
    return { id: d.id, environment: d.environment, app: String(d.app ?? d.manifest?.name ?? ''), imageDigest: String(d.imageDigest ?? d.evidence?.imageDigest ?? ''), input: read.input };
  });
}

/**
 * Reads a deployments export file: at most MAX_DEPLOYMENTS_BYTES of it, whatever it is (a file
 * that grows meanwhile, a device that never ends): one byte more is refused.
 */
export async function readDeployments(path: string, maxBytes = MAX_DEPLOYMENTS_BYTES): Promise<Deployment[]> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    const file = await open(path, 'r');
    try {
      // A file larger already is refused unread; its size is a hint only (it may grow, a device
      // has none): reads go on to the end of the file, or one byte past the bound.
      const size = (await file.stat()).size;
      if (size > maxBytes) throw tooLarge(path, maxBytes);
      // One buffer filled to its end before the next (a pipe's short reads share it), each the size the file says, at least 64 KiB.
      let buf = Buffer.allocUnsafe(Math.min(Math.max(size + 1, 64 * 1024), maxBytes + 1));
      let filled = 0;
      for (;;) {
        if (filled === buf.length) {
          chunks.push(buf);
          buf = Buffer.allocUnsafe(Math.min(Math.max(buf.length, 64 * 1024), maxBytes + 1 - total));
          filled = 0;
        }
        const { bytesRead } = await file.read(buf, filled, buf.length - filled, null);
        if (bytesRead === 0) break;
        filled += bytesRead;
        total += bytesRead;
        if (total > maxBytes) throw tooLarge(path, maxBytes);
      }
      chunks.push(buf.subarray(0, filled));
    } finally {
      await file.close();
    }
  } catch (e) {
    throw e instanceof CtError ? e : asIoError(e, path);
  }
  return parseDeployments(path, Buffer.concat(chunks, total).toString('utf8'));
}

export function diffPolicySets(base: PolicySet, head: PolicySet, deployments: readonly Deployment[], now = Date.now()): DiffResult {
  const counts: Record<Change, number> = { 'now-denied': 0, 'now-allowed': 0, 'reasons-changed': 0, unchanged: 0 };
  const rows = deployments.map((d) => {
    const input = { ...d.input, now: d.input.now ?? now };
    const before = evaluate(base, input);
    const after = evaluate(head, input);
    const change: Change = before.allow && !after.allow ? 'now-denied' : !before.allow && after.allow ? 'now-allowed' : reasons(before) !== reasons(after) ? 'reasons-changed' : 'unchanged';
    counts[change]++;
    return { id: d.id, app: d.app, environment: d.environment, imageDigest: d.imageDigest, before, after, change };
  });
  const policies: PolicyChange[] = [];
  for (const p of head.policies) {
    const old = base.get(p.name);
    if (!old) policies.push({ name: p.name, change: 'added' });
    else if (old.digest !== p.digest) policies.push({ name: p.name, change: 'modified' });
  }
  for (const p of base.policies) if (!head.get(p.name)) policies.push({ name: p.name, change: 'removed' });
  policies.sort((a, b) => (a.name < b.name ? -1 : 1));
  return { rows, policies, counts };
}

function reasons(d: Decision): string {
  return [...d.violations, ...d.warnings].map((v) => `${v.policy}/${v.code}`).sort().join(',');
}

/** Keeps the table readable and the PR comment under GitHub's 65,536-character limit. */
export const MAX_TABLE_ROWS = 200;

const cell = (s: string) => tableCell(boundText(s, 300));
const verdict = (d: Decision) => (d.allow ? (d.warnings.length ? `allowed (${d.warnings.length} warning${d.warnings.length > 1 ? 's' : ''})` : 'allowed') : 'denied');
const why = (d: Decision) =>
  [...new Set([...d.violations, ...d.warnings].map((v) => `${cellCode(v.code)} (${tableCell(v.policy)})`))].join(', ') || '—';

export function renderDiffMarkdown(r: DiffResult, labels: { base: string; head: string }): string {
  const lines: string[] = [];
  lines.push(`### Policy impact: ${codeSpan(boundText(labels.base, 300))} → ${codeSpan(boundText(labels.head, 300))}`, '');
  const total = r.rows.length;
  lines.push(`${total} live deployment${total === 1 ? '' : 's'} checked: **${r.counts['now-denied']} would now be denied**, ${r.counts['now-allowed']} would now be allowed, ${r.counts['reasons-changed']} keep their outcome with different reasons, ${r.counts.unchanged} unchanged.`, '');
  if (r.policies.length) lines.push(`Policies changed: ${r.policies.map((p) => `${codeSpan(p.name)} (${p.change})`).join(', ')}`, '');
  const changed = r.rows.filter((x) => x.change !== 'unchanged');
  if (changed.length) {
    lines.push('| Deployment | App | Environment | Image | Before | After | Why (after) |', '|---|---|---|---|---|---|---|');
    const order: Record<Change, number> = { 'now-denied': 0, 'now-allowed': 1, 'reasons-changed': 2, unchanged: 3 };
    const sorted = [...changed].sort((a, b) => order[a.change] - order[b.change] || (a.id < b.id ? -1 : 1));
    for (const x of sorted.slice(0, MAX_TABLE_ROWS)) {
      const mark = x.change === 'now-denied' ? '⛔ ' : x.change === 'now-allowed' ? '✅ ' : '';
      lines.push(`| ${mark}${cell(x.id)} | ${cell(x.app)} | ${cell(x.environment)} | \`${cell(x.imageDigest.slice(0, 19))}\` | ${verdict(x.before)} | ${verdict(x.after)} | ${why(x.after)} |`);
    }
    if (sorted.length > MAX_TABLE_ROWS) lines.push('', `… and ${sorted.length - MAX_TABLE_ROWS} more (use \`ct policy diff --format json\` for all).`);
  } else lines.push('No deployment changes its outcome.');
  return `${lines.join('\n')}\n`;
}
