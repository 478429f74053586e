/**
 * `ct mcp`'s own tools: the library over local files, read-only (inspect, verify, explain a
 * decision, the impact of a policy change). Paths are confined to one root directory (the
 * working directory by default), so an agent steered by text it read cannot make them read
 * elsewhere. The policy tools run the very `ct policy explain` / `ct policy diff` code paths.
 */
import { realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { z } from 'zod';
import { inspectBundle } from '../bundle/inspect.js';
import { loadTrustStore } from '../trust/store.js';
import { trustMaterial } from '../verify/trust-material.js';
import { verifyCtp } from '../verify/ctp/verify-ctp.js';
import { defaultVerifiers } from '../verify/ctp/verifiers.js';
import { loadTrustedRootFile } from '../verify/sigstore/trusted-root.js';
import { diffCommand, explainCommand } from '../cli/commands/policy.js';
import type { Io } from '../cli/io.js';
import { ToolError, type ToolDef } from './tool.js';
import { untrusted, untrustedJson } from './untrusted.js';
import { ERROR_CODE } from '../protocol/error-code.js';
import { NAME } from '../core/name.js';

/** A new schema at each use, described (one object used twice is written as a JSON Schema `$ref`, which some clients do not resolve). */
const path = (what: string) => z.string().min(1).max(1024).describe(`${what}: a path under the served root (relative to it, or absolute inside it)`);

/** Runs a command function, capturing what it prints (JSON) and its exit code. */
async function captured(fn: (io: Io) => Promise<number>): Promise<{ out: string; err: string; code: number }> {
  let out = '';
  let err = '';
  const code = await fn({ out: (t) => void (out += `${t}\n`), err: (t) => void (err += `${t}\n`) });
  return { out, err, code };
}

/** The real path of `p`, or of its deepest existing ancestor with the rest appended (a path not created yet). */
function existingRealPath(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    const parent = dirname(p);
    return parent === p ? p : join(existingRealPath(parent), basename(p));
  }
}

type Row = Record<string, unknown>;
const isRow = (v: unknown): v is Row => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A policy's finding: its message and what it saw quote the bundle and its signers (file names, predicate values, subjects). */
function violationView(v: unknown) {
  if (!isRow(v)) return null;
  return { ...v, message: untrusted('policy reason', v.message, 1024), evidence: untrustedJson('policy evidence', v.evidence ?? null, 4096) };
}

/** A decision as `ct policy explain` prints it, its reasons wrapped as data. */
function decisionView(d: unknown) {
  if (!isRow(d)) return d ?? null;
  const list = (x: unknown) => (Array.isArray(x) ? x.map(violationView) : []);
  return { ...d, violations: list(d.violations), warnings: list(d.warnings) };
}

/**
 * A row of `ct policy diff`: its id, app and environment are the deployments export's, the codes
 * the policies' (a code not shaped like one is the export's too); all kept only as data or codes.
 */
function diffRowView(r: unknown) {
  if (!isRow(r)) return null;
  const codes = (x: unknown) => (Array.isArray(x) ? x.map((c) => (typeof c === 'string' && ERROR_CODE.test(c) ? c : untrusted('policy code', c, 256))) : []);
  const side = (x: unknown) => (isRow(x) ? { ...x, violations: codes(x.violations), ...(x.warnings !== undefined ? { warnings: codes(x.warnings) } : {}) } : null);
  return { ...r, id: untrusted('deployment id', r.id, 256), app: untrusted('app name', r.app, 256), environment: untrusted('environment name', r.environment, 256), before: side(r.before), after: side(r.after) };
}

export function localTools(root: string): ToolDef[] {
  const realRoot = existingRealPath(root);
  const inRoot = (p: string) => {
    const abs = resolve(root, p);
    // Checked as written and as the file system resolves it: a symbolic link inside the root
    // (a cloned repository may carry one) must not lead out of it.
    for (const [base, path] of [[root, abs], [realRoot, existingRealPath(abs)]]) {
      const rel = relative(base, path);
      if (rel.startsWith('..') || isAbsolute(rel)) throw new ToolError('PATH_OUTSIDE_ROOT', `${p} is outside ${root}`);
    }
    return abs;
  };
  return [
    {
      name: 'inspect_bundle', title: 'Inspect a .ctp file', kind: 'read',
      description: 'What a local .ctp bundle holds (manifest, image, attestations, security profiles), with structure and digests checked; signatures are not checked (use verify_bundle).',
      input: { path: path('the .ctp file') },
      output: { report: z.unknown() },
      async run(a: { path: string }) {
        // Nothing in an unverified bundle is vouched for: its version, builder, command, environment
        // and file names are whatever its author wrote, all of it data.
        return { report: untrustedJson('bundle contents', await inspectBundle(inRoot(a.path)), 1 << 20) };
      },
    },
    {
      name: 'verify_bundle', title: 'Verify a .ctp file', kind: 'read',
      description: 'Verify a local .ctp against a trust store, as `ct verify` does: digests, signatures, transparency-log quorum, coverage of every file. Returns the decision with its code.',
      input: {
        path: path('the .ctp file'), trustStore: path('the trust store (trust-store.json)'), trustedRoot: path('a Sigstore trusted_root.json (for keyless signatures)').optional(),
        mode: z.enum(['strict', 'permissive', 'audit']).describe('strict (default): any failure rejects; permissive and audit report more as warnings').optional(),
        logQuorum: z.number().int().min(1).max(16).describe('transparency-log operators that must hold each signature, 1 to 16').optional(),
      },
      output: { decision: z.enum(['ALLOW', 'REJECT']), code: z.string().nullable() },
      async run(a: { path: string; trustStore: string; trustedRoot?: string; mode?: 'strict' | 'permissive' | 'audit'; logQuorum?: number }) {
        const store = await loadTrustStore(inRoot(a.trustStore));
        const rootFile = a.trustedRoot ? await loadTrustedRootFile(inRoot(a.trustedRoot)) : undefined;
        const report = await verifyCtp(inRoot(a.path), {
          trust: trustMaterial(store, rootFile),
          mode: a.mode ?? 'strict',
          requirements: a.logQuorum ? { logQuorum: a.logQuorum } : {},
          verifiers: defaultVerifiers(rootFile ? { trustedRoot: rootFile } : {}),
        });
        // The message and warnings quote the bundle (a symlink's target, a file's name): data, in the record too.
        const message = untrusted('verification message', report.message, 4096);
        const warnings = (report.warnings ?? []).map((w) => untrusted('verification warning', w, 1024));
        return { decision: report.decision, code: report.code ?? null, message, warnings, record: { ...report.record, message, warnings } };
      },
    },
    {
      name: 'explain_decision', title: 'Explain a policy decision', kind: 'read',
      description: 'Verify a local .ctp and judge it under a policy directory for an environment, as `ct policy explain` does: allowed or denied, which policy and rule, with what evidence.',
      input: { path: path('the .ctp file'), trustStore: path('the trust store (trust-store.json)'), policies: z.array(path('a policy directory or file')).min(1).max(20).describe('policy directories or files, 1 to 20'), environment: z.string().regex(NAME).describe('environment to judge it for (lower case: letters, digits, \'.\', \'_\', \'-\')').optional() },
      output: { exitCode: z.number(), decision: z.unknown() },
      async run(a: { path: string; trustStore: string; policies: string[]; environment?: string }) {
        const r = await captured((io) => explainCommand(io, inRoot(a.path), { trustStore: inRoot(a.trustStore), policies: a.policies.map(inRoot), environment: a.environment, format: 'json' }));
        return { exitCode: r.code, decision: decisionView(JSON.parse(r.out)) };
      },
    },
    {
      name: 'policy_impact', title: 'Impact of a policy change', kind: 'read',
      description: 'Two policy directories (base and head) judged against a deployments export (GET /api/v1/deployments?format=evidence), as `ct policy diff` does: which deployments would now be denied or allowed.',
      input: { base: path('the policy directory as it is'), head: path('the policy directory as proposed'), against: path('a deployments export (GET /api/v1/deployments?format=evidence)') },
      output: { counts: z.record(z.string(), z.number()), rows: z.array(z.unknown()), policies: z.array(z.unknown()) },
      async run(a: { base: string; head: string; against: string }) {
        const r = await captured((io) => diffCommand(io, inRoot(a.base), inRoot(a.head), { against: inRoot(a.against), format: 'json' }));
        const out = JSON.parse(r.out) as Row;
        return { ...out, rows: Array.isArray(out.rows) ? out.rows.map(diffRowView) : [] };
      },
    },
  ];
}
