/**
 * `ct policy test`: suites of cases beside the policies (gator verify / kyverno test style).
 *
 * A suite (`suite.yaml` or `*.test.yaml`, JSON too) is `{cases: [...]}`; each case names an input
 * fixture (`input: file` with `{evidence, manifest, host, findings?, now?}`), optionally a bundle
 * whose manifest and security/ files replace the fixture's manifest (`bundle: path`), inline
 * overrides (`host`, `manifest`, `now`, `mode`, `findings`) and `set` (dotted path → value, for
 * negative cases that change exactly one thing), and `expect`: `allow`, and optionally
 * `violations`/`warnings` as a list of codes (compared as multisets), `yes`, `no` or a count.
 * Every case is evaluated against the whole repository, since every matching policy applies.
 */
import { readFile, realpath } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { asIoError, boundText } from '../core/errors.js';
import { readBundleFacts } from './bundle-facts.js';
import { evaluate } from './evaluate.js';
import type { PolicyIssue } from './issues.js';
import { compileTexts, isSuiteFile, readPolicySources, walkRepo } from './load.js';
import type { PolicySet } from './policy-set.js';
import { readPolicyInput } from './input.js';
import { policiesRootProblem } from './root.js';
import { parseSource, type ParsedSource } from './source.js';
import type { Decision, SourceLocation } from './types.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- suite documents are walked by field name */
type Count = string[] | 'yes' | 'no' | number;

export interface CaseResult {
  suite: string;
  name: string;
  passed: boolean;
  /** What did not match, one line each; empty when passed. */
  failures: string[];
  at: SourceLocation;
  decision?: Decision;
  ms: number;
}

export interface TestReport {
  ok: boolean;
  passed: number;
  failed: number;
  /** Problems that stopped policies or suites from loading (with file:line). */
  errors: PolicyIssue[];
  warnings: PolicyIssue[];
  cases: CaseResult[];
  /** Policies that no case exercised (an error with --require-tests). */
  untested: string[];
}

export interface TestOptions {
  requireTests?: boolean;
}

export async function runPolicyTests(repo: string, opts: TestOptions = {}): Promise<TestReport> {
  const report: TestReport = { ok: false, passed: 0, failed: 0, errors: [], warnings: [], cases: [], untested: [] };
  // Before anything under the root is read (policies included): see root.ts.
  const link = await policiesRootProblem(repo);
  if (link) {
    report.errors.push(link);
    return report;
  }
  const loaded = compileTexts(await readPolicySources([repo]));
  report.errors.push(...loaded.issues.filter((i) => i.severity === 'error'));
  report.warnings.push(...loaded.issues.filter((i) => i.severity === 'warning'));
  if (!loaded.set) return report;
  const set = loaded.set;
  const suites = await walkRepo(repo, isSuiteFile);
  const root: Root = { lexical: resolve(repo), real: await realpath(repo) };
  for (const file of suites) await runSuite(file, set, report, root);
  const exercised = new Set(report.cases.flatMap((c) => c.decision?.policies ?? []));
  report.untested = set.policies.map((p) => p.name).filter((n) => !exercised.has(n));
  if (opts.requireTests) {
    for (const name of report.untested) {
      const p = set.get(name)!;
      report.errors.push({ ...p.at, severity: 'error', kind: 'untested', message: `policy ${name} is not exercised by any test case (--require-tests)` });
    }
    if (set.policies.length === 0) report.errors.push({ file: repo, line: 1, column: 1, severity: 'error', kind: 'untested', message: 'no policies found' });
  }
  report.ok = report.errors.length === 0 && report.failed === 0 && (!opts.requireTests || report.cases.length > 0);
  return report;
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw asIoError(e, file);
  }
}

type Refusal = 'outside' | 'hidden';

/** Characters of one suite problem at most. */
const MAX_PROBLEM = 500;

/** The repository as given (for the paths suites name) and with links resolved (for where they lead). */
interface Root {
  lexical: string;
  real: string;
}

/**
 * Fixture and bundle paths must stay inside the repository (after resolving symlinks), and out of
 * its dot-directories and dot-files (the rule walkRepo follows): suites come from pull requests,
 * and the check must not read files of the CI machine or of the checkout's .git (credentials) into
 * its report. Answers why a path is refused, or undefined.
 */
async function refused(root: Root, path: string): Promise<Refusal | undefined> {
  const hidden = (rel: string) => rel.split(sep).some((s) => s.startsWith('.') && s !== '..');
  if (hidden(relative(root.lexical, path))) return 'hidden';
  let real: string;
  try {
    real = await realpath(path);
  } catch {
    return undefined; // missing: reported by the reader with its own error
  }
  const rel = relative(root.real, real);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) return 'outside';
  return hidden(rel) ? 'hidden' : undefined;
}

const REFUSED: Record<Refusal, string> = {
  outside: 'must be inside the policy repository',
  hidden: 'must not be a dot-file or inside a dot-directory (.git, .github, …)',
};

async function runSuite(file: string, set: PolicySet, report: TestReport, root: Root): Promise<void> {
  const parsed = parseSource(file, await readText(file));
  if (!parsed.source) {
    report.errors.push(...parsed.issues);
    return;
  }
  const src = parsed.source;
  const doc = src.value as any;
  if (!doc || typeof doc !== 'object' || !Array.isArray(doc.cases)) {
    report.errors.push({ ...src.locate([]), severity: 'error', kind: 'suite', message: 'a suite is a mapping with `cases: [...]`' });
    return;
  }
  const extra = Object.keys(doc).find((k) => k !== 'cases');
  if (extra) {
    report.errors.push({ ...src.locateKey([], extra), severity: 'error', kind: 'suite', message: `unknown field ${JSON.stringify(extra)} (a suite has only cases)` });
    return;
  }
  const fixtures = new Map<string, ParsedSource>();
  for (let i = 0; i < doc.cases.length; i++) {
    const c = doc.cases[i];
    const at = src.locate(['cases', i]);
    const t0 = performance.now();
    const name = typeof c?.name === 'string' ? c.name : `case ${i + 1}`;
    // Messages can quote what a file held (a bundle's parse error): bounded, so a report stays readable and never carries a whole file.
    const problem = (message: string, path: (string | number)[] = [], kind = 'suite') => {
      report.errors.push({ ...src.locate(['cases', i, ...path]), severity: 'error', kind, message: boundText(`${name}: ${message}`, MAX_PROBLEM) });
    };
    if (!c || typeof c !== 'object') {
      problem('a case is a mapping');
      continue;
    }
    const unknown = Object.keys(c).filter((k) => !['name', 'input', 'bundle', 'host', 'manifest', 'now', 'mode', 'findings', 'set', 'expect', 'evidence'].includes(k));
    if (unknown.length) {
      problem(`unknown field ${unknown[0]}`, [unknown[0]]);
      continue;
    }
    if (!c.expect || typeof c.expect !== 'object' || typeof c.expect.allow !== 'boolean') {
      problem('expect.allow (true|false) is required', ['expect']);
      continue;
    }
    let base: any = {};
    let fixtureSrc: ParsedSource = src;
    let basePath: (string | number)[] = ['cases', i];
    if (c.input !== undefined) {
      const path = resolve(dirname(file), String(c.input));
      const why = await refused(root, path);
      if (why) {
        problem(`input: the fixture ${REFUSED[why]}`, ['input'], `fixture-${why}`);
        continue;
      }
      let fx = fixtures.get(path);
      if (!fx) {
        let text: string;
        try {
          text = await readText(path);
        } catch (e) {
          problem(`input: ${(e as Error).message}`, ['input']);
          continue;
        }
        const p = parseSource(path, text, { quoteText: false });
        if (!p.source) {
          report.errors.push(...p.issues);
          continue;
        }
        fx = p.source;
        fixtures.set(path, fx);
      }
      base = structuredClone(fx.value);
      fixtureSrc = fx;
      basePath = [];
    }
    for (const k of ['evidence', 'host', 'manifest', 'now', 'mode', 'findings']) if (c[k] !== undefined) base[k] = structuredClone(c[k]);
    if (c.bundle !== undefined) {
      const path = resolve(dirname(file), String(c.bundle));
      const why = await refused(root, path);
      if (why) {
        problem(`bundle: the bundle ${REFUSED[why]}`, ['bundle'], `fixture-${why}`);
        continue;
      }
      try {
        base.manifest = await readBundleFacts(path);
      } catch (e) {
        problem(`bundle: ${(e as Error).message}`, ['bundle']);
        continue;
      }
    }
    if (c.set !== undefined) {
      if (!c.set || typeof c.set !== 'object') {
        problem('set: a mapping of dotted path → value', ['set']);
        continue;
      }
      try {
        for (const [path, value] of Object.entries(c.set)) setPath(base, path, value);
      } catch (e) {
        problem((e as Error).message, ['set']);
        continue;
      }
    }
    const read = readPolicyInput(base, fixtureSrc, basePath);
    if (!read.input) {
      report.errors.push(...read.issues);
      continue;
    }
    const decision = evaluate(set, read.input);
    const failures = compare(c.expect, decision);
    const result: CaseResult = { suite: file, name, passed: failures.length === 0, failures, at, decision, ms: performance.now() - t0 };
    report.cases.push(result);
    if (result.passed) report.passed++;
    else report.failed++;
  }
}

const FORBIDDEN_SEGMENTS = new Set(['__proto__', 'prototype', 'constructor']);

/** `a.b.0.c` → sets base.a.b[0].c, creating mappings on the way. Suites come from pull requests: no prototype keys. */
export function setPath(base: any, path: string, value: unknown): void {
  const segs = path.split('.');
  if (segs.some((s) => FORBIDDEN_SEGMENTS.has(s) || s === '')) throw new Error(`set: path ${JSON.stringify(path)} is not allowed`);
  let cur = base;
  for (let i = 0; i < segs.length - 1; i++) {
    const s = segs[i];
    if (cur[s] === undefined || cur[s] === null || typeof cur[s] !== 'object') cur[s] = /^\d+$/.test(segs[i + 1]) ? [] : {};
    cur = cur[s];
  }
  const last = segs[segs.length - 1];
  if (value === null && !Array.isArray(cur)) delete cur[last];
  else cur[last] = value;
}

function compare(expect: any, d: Decision): string[] {
  const out: string[] = [];
  if (d.allow !== expect.allow) out.push(`expected ${expect.allow ? 'allow' : 'deny'}, got ${d.allow ? 'allow' : 'deny'} (violations: ${codes(d.violations).join(', ') || 'none'})`);
  checkCount('violations', expect.violations, codes(d.violations), out);
  checkCount('warnings', expect.warnings, codes(d.warnings), out);
  if (expect.mode !== undefined && expect.mode !== d.mode) out.push(`expected mode ${expect.mode}, got ${d.mode}`);
  if (expect.policies !== undefined) {
    const want = [...(expect.policies as string[])].sort().join(', ');
    if (want !== d.policies.join(', ')) out.push(`expected policies [${want}], got [${d.policies.join(', ')}]`);
  }
  return out;
}

function codes(vs: Decision['violations']): string[] {
  return vs.map((v) => v.code);
}

function checkCount(what: string, want: Count | undefined, got: string[], out: string[]): void {
  if (want === undefined) return;
  if (want === 'yes' || want === 'no') {
    if ((got.length > 0) !== (want === 'yes')) out.push(`expected ${what}: ${want}, got [${got.join(', ')}]`);
  } else if (typeof want === 'number') {
    if (got.length !== want) out.push(`expected ${want} ${what}, got ${got.length} [${got.join(', ')}]`);
  } else if (Array.isArray(want)) {
    const a = [...want].map(String).sort().join(', ');
    const b = [...got].sort().join(', ');
    if (a !== b) out.push(`expected ${what} [${a}], got [${b}]`);
  } else out.push(`expect.${what} must be a list of codes, yes, no or a number`);
}

/** JUnit XML, the format CI systems (GitHub, GitLab) render as test reports. */
export function toJUnit(r: TestReport): string {
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
  const bySuite = new Map<string, CaseResult[]>();
  for (const c of r.cases) bySuite.set(c.suite, [...(bySuite.get(c.suite) ?? []), c]);
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>', `<testsuites name="ct policy test" tests="${r.cases.length + r.errors.length}" failures="${r.failed}" errors="${r.errors.length}">`];
  for (const [suite, cases] of bySuite) {
    lines.push(`  <testsuite name="${esc(suite)}" tests="${cases.length}" failures="${cases.filter((c) => !c.passed).length}">`);
    for (const c of cases) {
      lines.push(`    <testcase classname="${esc(suite)}" name="${esc(c.name)}" file="${esc(c.at.file)}" line="${c.at.line}" time="${(c.ms / 1000).toFixed(4)}">`);
      if (!c.passed) lines.push(`      <failure message="${esc(c.failures[0])}">${esc(c.failures.join('\n'))}</failure>`);
      lines.push('    </testcase>');
    }
    lines.push('  </testsuite>');
  }
  if (r.errors.length) {
    lines.push(`  <testsuite name="load" tests="${r.errors.length}" errors="${r.errors.length}">`);
    for (const e of r.errors) lines.push(`    <testcase classname="load" name="${esc(`${e.file}:${e.line}:${e.column}`)}" file="${esc(e.file)}" line="${e.line}"><error message="${esc(e.message)}">${esc(`${e.file}:${e.line}:${e.column}: ${e.message}`)}</error></testcase>`);
    lines.push('  </testsuite>');
  }
  lines.push('</testsuites>');
  return `${lines.join('\n')}\n`;
}
