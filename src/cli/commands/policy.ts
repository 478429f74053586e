/**
 * `ct policy …`: the policy repository workflow (docs/policy.md).
 *   lint [PATH…]                      schema + meaning checks, file:line:column
 *   test [DIR]                        run the suites; text, JSON or JUnit; --require-tests
 *   explain BUNDLE --evidence FILE    why a bundle is allowed or denied on a host
 *   diff BASE HEAD --against FILE     which live deployments a change would deny or allow
 */
import type { Command } from 'commander';
import { appendFile, readFile, stat } from 'node:fs/promises';
import { CtError, asIoError } from '../../core/errors.js';
import { writeFileAtomic } from '../../core/fs.js';
import { processIo, runCommand, type Io } from '../io.js';
import type { Mode } from '../../verify/evidence.js';
import {
  compileTexts,
  decisionRecord,
  diffPolicySets,
  evaluate,
  exitCodeForDecision,
  formatIssue,
  lintTexts,
  readDeployments,
  policyInvalidFrom,
  readBundleFacts,
  readPolicyInput,
  firstRootProblem,
  readPolicySources,
  readPolicySourcesAtRev,
  renderDecision,
  renderDiffMarkdown,
  runPolicyTests,
  toJUnit,
  type PolicySet,
} from '../../policy/cli-api.js';
import { parseSource } from '../../policy/source.js';
import { evidenceFromCtp } from '../../policy/ctp-evidence.js';
import { withPolicyKeyless } from '../../policy/keyless-trust.js';
import { trustMaterial } from '../../verify/trust-material.js';
import { loadTrustStore } from '../../trust/store.js';
import { loadTrustedRootFile } from '../../verify/sigstore/trusted-root.js';
import { defaultVerifiers } from '../../verify/ctp/index.js';

const MODES: Mode[] = ['strict', 'permissive', 'audit'];

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw asIoError(e, path);
  }
}

async function emit(io: Io, text: string, output: string | undefined): Promise<void> {
  if (output) await writeFileAtomic(output, text);
  else io.out(text);
}

export async function lintCommand(io: Io, paths: string[], opts: { format?: string; failOnWarnings?: boolean }): Promise<number> {
  const roots = paths.length ? paths : ['.'];
  // A symlinked root is refused before anything under it is read (policy/root.ts).
  const problem = await firstRootProblem(roots);
  const sources = problem ? [] : await readPolicySources(roots);
  const result = problem ? { issues: [problem], errors: 1, warnings: 0 } : lintTexts(sources);
  if (opts.format === 'json') io.out(JSON.stringify({ ok: result.errors === 0, errors: result.errors, warnings: result.warnings, issues: result.issues, policies: result.set?.policies.map((p) => p.name) ?? [] }, null, 2));
  else {
    for (const i of result.issues) io.err(formatIssue(i));
    // With errors there is no compiled set: count the files read (it said "0 policies" after reading four).
    const what = result.set ? `${result.set.policies.length} policies` : `${sources.length} policy file(s) read, none compiled`;
    io.out(`${what}, ${result.errors} error(s), ${result.warnings} warning(s)`);
  }
  if (result.errors) return 10;
  return opts.failOnWarnings && result.warnings ? 1 : 0;
}

export async function testCommand(io: Io, dir: string, opts: { format?: string; output?: string; requireTests?: boolean }): Promise<number> {
  const report = await runPolicyTests(dir, { requireTests: opts.requireTests });
  if (opts.format === 'junit') await emit(io, toJUnit(report), opts.output);
  else if (opts.format === 'json') {
    const cases = report.cases.map((c) => ({ suite: c.suite, name: c.name, passed: c.passed, failures: c.failures, line: c.at.line, allow: c.decision?.allow, violations: c.decision?.violations.map((v) => v.code), warnings: c.decision?.warnings.map((v) => v.code), policies: c.decision?.policies }));
    await emit(io, `${JSON.stringify({ ok: report.ok, passed: report.passed, failed: report.failed, errors: report.errors, untested: report.untested, cases }, null, 2)}\n`, opts.output);
  } else {
    const lines: string[] = [];
    for (const c of report.cases) {
      lines.push(`${c.passed ? 'PASS' : 'FAIL'} ${c.at.file}:${c.at.line} ${c.name}`);
      for (const f of c.failures) lines.push(`     ${f}`);
    }
    for (const e of report.errors) lines.push(`ERROR ${formatIssue(e)}`);
    if (report.untested.length && !opts.requireTests) lines.push(`note: not exercised by any case: ${report.untested.join(', ')}`);
    lines.push(`${report.passed} passed, ${report.failed} failed, ${report.errors.length} error(s)`);
    await emit(io, `${lines.join('\n')}\n`, opts.output);
  }
  if (report.errors.length) return 10;
  return report.ok ? 0 : 1;
}

interface ExplainOptions {
  evidence?: string;
  trustStore?: string;
  trustedRoot?: string;
  legacyPae?: boolean;
  policies: string[];
  environment?: string;
  host?: string;
  mode?: string;
  format?: string;
  auditLog?: string;
}

export async function explainCommand(io: Io, bundle: string, opts: ExplainOptions): Promise<number> {
  if (opts.mode !== undefined && !MODES.includes(opts.mode as Mode)) throw new CtError('USAGE', `--mode must be one of ${MODES.join(', ')}`);
  let doc: Record<string, unknown>;
  let parsedSource;
  // Loaded first: a bundle's Sigstore attestations count when signed by a keyless signer they name.
  const set = await loadSet(opts.policies);
  if (opts.evidence) {
    const evText = await readText(opts.evidence);
    const parsed = parseSource(opts.evidence, evText);
    if (!parsed.source) throw policyInvalidFrom(parsed.issues, 'JSON_INVALID');
    parsedSource = parsed.source;
    const raw = parsed.source.value as Record<string, unknown>;
    doc = raw && typeof raw === 'object' && 'evidence' in raw ? { ...raw } : { evidence: raw };
  } else {
    // No evidence file: verify the .ctp here and let the policies judge what was proven.
    if (!opts.trustStore) throw new CtError('USAGE', 'give --evidence FILE, or a .ctp with --trust-store FILE to verify it');
    if (bundle === '-' || (await isDir(bundle))) throw new CtError('USAGE', 'verifying needs a .ctp file (a directory or - needs --evidence)');
    const store = await loadTrustStore(opts.trustStore);
    const root = opts.trustedRoot ? await loadTrustedRootFile(opts.trustedRoot) : undefined;
    const verified = await evidenceFromCtp(bundle, withPolicyKeyless(trustMaterial(store, root), set), {
      allowLegacyPae: Boolean(opts.legacyPae),
      ...(root ? { verifiers: defaultVerifiers({ trustedRoot: root }) } : {}),
    });
    for (const w of verified.warnings) io.err(`warning: ${w}`);
    doc = { evidence: verified.evidence, findings: verified.findings };
    parsedSource = parseSource('(verified bundle)', JSON.stringify(doc)).source!;
  }
  if (opts.host) {
    const hp = parseSource(opts.host, await readText(opts.host));
    if (!hp.source) throw policyInvalidFrom(hp.issues, 'JSON_INVALID');
    doc.host = hp.source.value;
  }
  if (opts.environment) doc.host = { ...((doc.host as object) ?? {}), environment: opts.environment };
  // Without a host the policies have nothing to judge its side by (it read as a JSON error).
  if (doc.host === undefined && doc.hostFacts === undefined) {
    throw new CtError('USAGE', 'which host would run it? --host FILE gives its facts (ct host facts --environment ENV > host.json prints this machine\'s); --environment ENV alone judges a host whose capabilities are unknown (seccomp, AppArmor, SELinux and eBPF count as absent)');
  }
  if (bundle !== '-') doc.manifest = await readBundleFacts(bundle);
  const read = readPolicyInput(doc, parsedSource);
  if (!read.input) throw policyInvalidFrom(read.issues, 'JSON_INVALID');
  // The mode comes from the policies or the operator's --mode, never from the evidence file (SPEC §4).
  const input = { ...read.input, mode: opts.mode as Mode | undefined };
  const decision = evaluate(set, input);
  if (opts.format === 'json') io.out(JSON.stringify(decision, null, 2));
  else io.out(renderDecision(decision));
  if (opts.auditLog) {
    try {
      await appendFile(opts.auditLog, `${JSON.stringify(decisionRecord(decision, input))}\n`);
    } catch (e) {
      throw asIoError(e, opts.auditLog);
    }
  }
  return exitCodeForDecision(decision);
}

async function loadSet(paths: string[]): Promise<PolicySet> {
  const loaded = compileTexts(await readPolicySources(paths));
  if (!loaded.set) throw policyInvalidFrom(loaded.issues);
  return loaded.set;
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/** A directory, or a git revision of `repo` (policies under `path`). */
async function setFrom(ref: string, repo: string, path: string): Promise<PolicySet> {
  let texts;
  if (await isDir(ref)) {
    // A PR's checkout as the head: a symlinked root is refused before anything is read (policy/root.ts).
    const problem = await firstRootProblem([ref]);
    if (problem) throw policyInvalidFrom([problem]);
    texts = await readPolicySources([ref]);
  } else texts = await readPolicySourcesAtRev(repo, ref, path);
  const loaded = compileTexts(texts);
  if (!loaded.set) throw policyInvalidFrom(loaded.issues);
  return loaded.set;
}

export async function diffCommand(io: Io, base: string, head: string, opts: { against: string; repo?: string; path?: string; format?: string; output?: string; failOnDeny?: boolean }): Promise<number> {
  const deployments = await readDeployments(opts.against);
  const repo = opts.repo ?? '.';
  const path = opts.path ?? '.';
  const result = diffPolicySets(await setFrom(base, repo, path), await setFrom(head, repo, path), deployments);
  if (opts.format === 'json') {
    const rows = result.rows.map((r) => ({ id: r.id, app: r.app, environment: r.environment, imageDigest: r.imageDigest, change: r.change, before: { allow: r.before.allow, violations: r.before.violations.map((v) => v.code) }, after: { allow: r.after.allow, violations: r.after.violations.map((v) => v.code), warnings: r.after.warnings.map((v) => v.code) } }));
    await emit(io, `${JSON.stringify({ counts: result.counts, policies: result.policies, rows }, null, 2)}\n`, opts.output);
  } else await emit(io, renderDiffMarkdown(result, { base, head }), opts.output);
  return opts.failOnDeny && result.counts['now-denied'] > 0 ? 4 : 0;
}

const collect = (v: string, prev: string[]) => [...prev, v];

export function register(program: Command): void {
  const policy = program.command('policy').description('Gatekeeper policies: lint, test, explain, diff');
  const run = <A extends unknown[]>(body: (...args: A) => Promise<number>) => async (...args: A) => {
    process.exitCode = await runCommand(processIo, () => body(...args));
  };

  policy
    .command('lint')
    .description('check policies: schema, regexes, conflicts, overlaps, unknown predicate types, expiry')
    .argument('[paths...]', 'policy files or repository directories', [])
    .option('--format <format>', 'text | json', 'text')
    .option('--fail-on-warnings', 'exit 1 when there are warnings')
    .action(run((paths: string[], o: { format: string; failOnWarnings?: boolean }) => lintCommand(processIo, paths, o)));

  policy
    .command('test')
    .description('run the test suites of a policy repository')
    .argument('[dir]', 'policy repository', '.')
    .option('--format <format>', 'text | json | junit', 'text')
    .option('--output <file>', 'write the report to a file instead of stdout')
    .option('--require-tests', 'fail when a policy is exercised by no case')
    .action(run((dir: string, o: { format: string; output?: string; requireTests?: boolean }) => testCommand(processIo, dir, o)));

  policy
    .command('explain')
    .description('evaluate a bundle against the policies and print why it is allowed or denied')
    .argument('<bundle>', '.ctp file or unpacked bundle directory (- : manifest from the evidence file)')
    .option('--evidence <file>', 'verified Evidence JSON (or {evidence, manifest?, host?}); without it the .ctp is verified here')
    .option('--trust-store <file>', 'trust store for verifying the .ctp (when no --evidence)')
    .option('--trusted-root <file>', 'Sigstore TrustedRoot JSON for verifying the .ctp')
    .option('--legacy-pae', 'accept the upstream MVP producer\'s legacy DSSE PAE (reported)')
    .option('--policies <path>', 'policy repository or file (repeatable)', collect, [])
    .option('--environment <env>', 'target environment')
    .option('--host <file>', 'host facts JSON')
    .option('--mode <mode>', 'override every policy mode: strict | permissive | audit')
    .option('--format <format>', 'text | json', 'text')
    .option('--audit-log <file>', 'append the decision record as a JSON line')
    .action(run((bundle: string, o: ExplainOptions) => explainCommand(processIo, bundle, { ...o, policies: o.policies.length ? o.policies : ['.'] })));

  policy
    .command('diff')
    .description('show which live deployments a policy change would deny or allow (markdown)')
    .argument('<base>', 'policy directory or git revision')
    .argument('<head>', 'policy directory or git revision')
    .requiredOption('--against <file>', 'deployments export ({deployments: [...]})')
    .option('--repo <dir>', 'git repository for revisions', '.')
    .option('--path <path>', 'policy directory inside the repository (for revisions)', '.')
    .option('--format <format>', 'markdown | json', 'markdown')
    .option('--output <file>', 'write the report to a file')
    .option('--fail-on-deny', 'exit 4 when any deployment would now be denied')
    .action(run((base: string, head: string, o: { against: string; repo?: string; path?: string; format?: string; output?: string; failOnDeny?: boolean }) => diffCommand(processIo, base, head, o)));
}
