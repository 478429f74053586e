/**
 * What a proposed change to the policy repository would do to what runs now: the files of the
 * proposal laid over the repository's current sources, compiled, and every live deployment judged
 * under both sets (the same engine as `ct policy diff`). Used by the server's impact endpoint, the
 * dashboard and the MCP `policy_impact` tool. The proposal is hostile input: paths are checked and
 * bounded before anything is compiled.
 */
import { basename, join, normalize, relative, isAbsolute } from 'node:path';
import { CtError } from '../core/errors.js';
import { diffPolicySets, type Deployment, type DiffResult } from './diff.js';
import { compileTexts, isPolicyFile, type SourceText } from './load.js';
import type { PolicySet } from './policy-set.js';
import type { Decision } from './types.js';

export interface PolicyProposal {
  /** Policy files to add or replace, by path relative to the repository root. */
  files: { path: string; text: string }[];
  /** Policy files to delete, by path relative to the repository root. */
  remove?: string[];
}

export const MAX_PROPOSAL_FILES = 50;
export const MAX_PROPOSAL_FILE_BYTES = 256 * 1024;

const hasControlOrBackslash = (p: string) => [...p].some((c) => c.charCodeAt(0) < 0x20 || c === '\\');

function checkPath(p: unknown): string {
  if (typeof p !== 'string' || p.length === 0 || p.length > 200 || isAbsolute(p) || hasControlOrBackslash(p)) throw new CtError('USAGE', 'a policy path is relative, at most 200 characters, without control characters', {});
  const n = normalize(p);
  if (n.startsWith('..') || n.split('/').some((s) => s.startsWith('.'))) throw new CtError('USAGE', `policy path ${JSON.stringify(p.slice(0, 200))} leaves the repository or names a hidden file`, {});
  if (!isPolicyFile(basename(n))) throw new CtError('USAGE', `${JSON.stringify(n)} is not a policy file name (policy.yaml or *.policy.{yaml,yml,json})`, {});
  return n;
}

/** The repository's sources with the proposal applied (`root`: where the current sources live). */
export function overlaySources(base: readonly SourceText[], root: string, proposal: PolicyProposal): SourceText[] {
  if (!Array.isArray(proposal.files) || proposal.files.length + (proposal.remove?.length ?? 0) > MAX_PROPOSAL_FILES) throw new CtError('USAGE', `a proposal changes 1–${MAX_PROPOSAL_FILES} files`, {});
  const byPath = new Map<string, SourceText>();
  for (const s of base) byPath.set(relative(root, s.file), s);
  for (const r of proposal.remove ?? []) byPath.delete(checkPath(r));
  for (const f of proposal.files) {
    const path = checkPath(f?.path);
    if (typeof f.text !== 'string' || Buffer.byteLength(f.text) > MAX_PROPOSAL_FILE_BYTES) throw new CtError('USAGE', `${path}: text is a string of at most ${MAX_PROPOSAL_FILE_BYTES} bytes`, {});
    byPath.set(path, { file: join(root, path), text: f.text, defaultName: path.replace(/\.(ya?ml|json)$/, '').replace(/[\\/]/g, '.').toLowerCase().replace(/[^a-z0-9._-]/g, '-') });
  }
  return [...byPath.values()];
}

/** A decision in a few fields: what a reviewer (or an agent) needs to see. */
export function decisionSummary(d: Decision) {
  return {
    allow: d.allow,
    codes: [...new Set(d.violations.map((v) => v.code))],
    warnings: [...new Set(d.warnings.map((v) => v.code))],
    reasons: d.violations.slice(0, 10).map((v) => ({ policy: v.policy, rule: v.rule, code: v.code, message: v.message.slice(0, 500) })),
    policies: d.policies,
  };
}

export type ImpactResult =
  | { ok: true; baseDigest: string; headDigest: string; diff: DiffResult }
  | { ok: false; issues: { file: string; line: number; column: number; message: string }[] };

/** Compiles the proposal over `base` and judges `deployments` under both sets. */
export function policyImpact(current: PolicySet, base: readonly SourceText[], root: string, proposal: PolicyProposal, deployments: readonly Deployment[], now = Date.now()): ImpactResult {
  const head = compileTexts(overlaySources(base, root, proposal));
  if (!head.set) {
    return { ok: false, issues: head.issues.filter((i) => i.severity === 'error').slice(0, 20).map((i) => ({ file: relative(root, i.file), line: i.line, column: i.column, message: i.message.slice(0, 500) })) };
  }
  return { ok: true, baseDigest: current.digest, headDigest: head.set.digest, diff: diffPolicySets(current, head.set, deployments, now) };
}

/** Rows of an impact answer: the live deployments a proposal would change are listed first. */
export const MAX_IMPACT_ROWS = 500;

/** The API's answer to an impact request (plain data: it crosses from the worker that computed it). */
export type ImpactAnswer =
  | { ok: false; issues: { file: string; line: number; column: number; message: string }[] }
  | { ok: true; body: Record<string, unknown> };

export function impactAnswer(out: ImpactResult): ImpactAnswer {
  if (!out.ok) return { ok: false, issues: out.issues };
  const order = { 'now-denied': 0, 'now-allowed': 1, 'reasons-changed': 2, unchanged: 3 } as const;
  const rows = [...out.diff.rows].sort((a, b) => order[a.change] - order[b.change]).slice(0, MAX_IMPACT_ROWS);
  return {
    ok: true,
    body: {
      baseDigest: out.baseDigest,
      headDigest: out.headDigest,
      counts: out.diff.counts,
      policies: out.diff.policies,
      deployments: rows.map((row) => ({ id: row.id, environment: row.environment, app: row.app, imageDigest: row.imageDigest, change: row.change, before: decisionSummary(row.before), after: decisionSummary(row.after) })),
      truncated: out.diff.rows.length > MAX_IMPACT_ROWS,
    },
  };
}
