/**
 * The policy check of a pull / merge request: lint → test → impact diff against live deployments,
 * reported as one comment (updated in place), one commit status and a job summary. Pure logic on
 * plain inputs; the entry files (main.ts for GitHub Actions, gitlab-main.ts for GitLab CI) read
 * their environment and call run().
 */
import { relative } from 'node:path';
import {
  compileTexts,
  diffPolicySets,
  formatIssue,
  lintTexts,
  policiesRootProblem,
  readDeployments,
  readPolicySources,
  readPolicySourcesAtRev,
  renderDiffMarkdown,
  runPolicyTests,
  type DiffResult,
  type LintResult,
  type PolicyIssue,
  type TestReport,
} from '../../src/policy/cli-api.js';
import { boundText } from '../../src/core/errors.js';
import { describeError } from '../build/errors.js';
import { COMMENT_MARKER, type Notifier, type StatusState } from './notifier.js';

export interface PolicyCheckInputs {
  /** The policy repository as checked out at the head of the pull request. */
  policies: string;
  /** Git work tree holding `policies` (for the base revision); defaults to `policies`. */
  repoDir?: string;
  /** Base revision to compare with (e.g. `origin/main`); no impact table without it. */
  baseRef?: string;
  /** Deployments export (`GET /api/v1/deployments?format=evidence`), a file path. */
  deployments?: string;
  requireTests?: boolean;
  /** Fail the check when a live deployment would now be denied (default: report only). */
  failOnDeny?: boolean;
  detailsUrl?: string;
  notifier?: Notifier;
  /**
   * The pull request comes from a fork (GitHub: its head repository is not the base repository):
   * its read-only token is refused (403) a commit status, which is then a warning, not a failure.
   */
  fork?: boolean;
  now?: number;
}

export interface PolicyCheckResult {
  ok: boolean;
  state: StatusState;
  description: string;
  markdown: string;
  lint: LintResult;
  tests: TestReport;
  diff?: DiffResult;
  diffNote?: string;
  comment?: { id: number; created: boolean };
  /** Why the comment could not be written (the status was set all the same). */
  commentError?: { code: string; message: string };
  /**
   * Why the status could not be posted. The report (summary, comment, outputs) is written all the
   * same. `fork`: a fork pull request's read-only token was refused (403), a warning, and the job's
   * outcome gates; any other failure (bad credentials, an API error) makes `ok` false: a check
   * whose gate was silently not set must not be green.
   */
  statusError?: { code: string; message: string; fork: boolean };
}

/** Characters of an error quoted into the report at most. */
const MAX_NOTE_ERROR = 300;

function noteError(e: unknown): string {
  const d = describeError(e);
  return boundText(oneLine(`${d.code}: ${d.message}`), MAX_NOTE_ERROR);
}

/** What a check that read nothing reports. */
function nothingRead(issues: PolicyIssue[]): { lint: LintResult; tests: TestReport } {
  return { lint: { issues, errors: issues.length, warnings: 0 }, tests: { ok: false, passed: 0, failed: 0, errors: [], warnings: [], cases: [], untested: [] } };
}

const MAX_LISTED = 30;
const MAX_COMMENT = 60_000;

export async function run(inputs: PolicyCheckInputs): Promise<PolicyCheckResult> {
  const now = inputs.now ?? Date.now();
  let diff: DiffResult | undefined;
  let diffNote: string | undefined;
  // The policies, the base revision or the deployments export that cannot be read fail the check
  // with a note in the report: a throw here would leave no status, no summary and no comment at all.
  let unreadable: string | undefined;
  let lint: LintResult;
  let tests: TestReport;
  try {
    // Before anything under the root is read: a symlinked root is refused (src/policy/root.ts).
    const rootProblem = await policiesRootProblem(inputs.policies);
    if (rootProblem) ({ lint, tests } = nothingRead([rootProblem]));
    else {
      lint = lintTexts(await readPolicySources([inputs.policies]), now);
      tests = await runPolicyTests(inputs.policies, { requireTests: inputs.requireTests });
    }
  } catch (e) {
    ({ lint, tests } = nothingRead([]));
    unreadable = 'policies unreadable';
    diffNote = `The policies could not be read (${noteError(e)}): the check fails.`;
  }
  if (unreadable) {
    // diffNote says why.
  } else if (!inputs.deployments) diffNote = 'No deployments export given: impact on live deployments not checked.';
  else if (!inputs.baseRef) diffNote = 'No base revision given: impact on live deployments not checked.';
  else if (!lint.set) diffNote = 'The policies do not load: impact not computed.';
  else {
    const repo = inputs.repoDir ?? inputs.policies;
    let base: ReturnType<typeof compileTexts> | undefined;
    try {
      base = compileTexts(await readPolicySourcesAtRev(repo, inputs.baseRef, relative(repo, inputs.policies) || '.'));
    } catch (e) {
      unreadable = 'base revision unreadable';
      diffNote = `The base revision ${oneLine(inputs.baseRef)} could not be read (${noteError(e)}): impact not computed, the check fails.`;
    }
    if (base && !base.set) diffNote = `The base revision ${oneLine(inputs.baseRef)} does not load; impact not computed.`;
    else if (base?.set) {
      let deployments: Awaited<ReturnType<typeof readDeployments>> | undefined;
      try {
        deployments = await readDeployments(inputs.deployments);
      } catch (e) {
        unreadable = 'deployments unreadable';
        diffNote = `The deployments export could not be read (${noteError(e)}): impact not computed, the check fails.`;
      }
      if (deployments) diff = diffPolicySets(base.set, lint.set, deployments, now);
    }
  }

  const denied = diff?.counts['now-denied'] ?? 0;
  const passed = lint.errors === 0 && tests.ok && !(inputs.failOnDeny && denied > 0) && !unreadable;
  const state: StatusState = passed ? 'success' : 'failure';
  const parts = [
    lint.errors ? `lint: ${lint.errors} error(s)` : 'lint ok',
    `tests ${tests.passed}/${tests.passed + tests.failed}${tests.errors.length ? `, ${tests.errors.length} error(s)` : ''}`,
    diff ? `${denied} deployment(s) would now be denied` : undefined,
    unreadable,
  ].filter(Boolean);
  const description = parts.join(' · ');

  // The status is the merge gate, the comment a convenience: the status goes first, and a comment
  // that cannot be rendered or written (no permission, an API error) is reported, never the reason
  // the status is missing. A status that cannot be posted is reported too, never the reason the
  // report is missing; only a fork's 403 leaves the outcome to the job (see statusError).
  let comment: PolicyCheckResult['comment'];
  let commentError: PolicyCheckResult['commentError'];
  let statusError: PolicyCheckResult['statusError'];
  if (inputs.notifier) {
    try {
      await inputs.notifier.setStatus(state, description, inputs.detailsUrl);
    } catch (e) {
      // Octokit's RequestError carries the HTTP status.
      const forbidden = (e as { status?: unknown } | null)?.status === 403;
      statusError = { ...describeError(e), fork: inputs.fork === true && forbidden };
    }
  }
  let markdown = `${COMMENT_MARKER}\n## Cerro Torre policy check: ${passed ? '✅ passed' : '❌ failed'}\n\n${description}\n`;
  try {
    markdown = render(passed, lint, tests, diff, diffNote, inputs.baseRef ?? 'base');
    if (inputs.notifier) comment = await inputs.notifier.upsertComment(markdown);
  } catch (e) {
    commentError = describeError(e);
  }
  const ok = passed && (!statusError || statusError.fork);
  return { ok, state, description, markdown, lint, tests, diff, diffNote, comment, ...(commentError ? { commentError } : {}), ...(statusError ? { statusError } : {}) };
}

function render(ok: boolean, lint: LintResult, tests: TestReport, diff: DiffResult | undefined, diffNote: string | undefined, baseRef: string): string {
  const out: string[] = [COMMENT_MARKER, `## Cerro Torre policy check: ${ok ? '✅ passed' : '❌ failed'}`, ''];
  out.push(`**Lint**: ${lint.set?.policies.length ?? 0} policies, ${lint.errors} error(s), ${lint.warnings} warning(s)`);
  if (lint.issues.length) {
    const listed = lint.issues.slice(0, MAX_LISTED).map(issueLine);
    if (lint.issues.length > MAX_LISTED) listed.push(`… and ${lint.issues.length - MAX_LISTED} more`);
    out.push('', '<details><summary>Lint findings</summary>', '', ...fenced(listed), '', '</details>');
  }
  out.push('', `**Tests**: ${tests.passed} passed, ${tests.failed} failed${tests.errors.length ? `, ${tests.errors.length} error(s)` : ''}`);
  const failing = tests.cases.filter((c) => !c.passed);
  if (failing.length || tests.errors.length) {
    const listed: string[] = [];
    for (const c of failing.slice(0, MAX_LISTED)) listed.push(`FAIL ${showPath(c.at.file)}:${c.at.line} ${oneLine(c.name)}`, ...c.failures.map((f) => `     ${oneLine(f)}`));
    for (const e of tests.errors.slice(0, MAX_LISTED)) listed.push(`ERROR ${issueLine(e)}`);
    out.push('', ...fenced(listed));
  }
  if (tests.untested.length) out.push('', `Not exercised by any case: ${tests.untested.map((n) => `\`${n}\``).join(', ')}`);
  out.push('');
  if (diff) out.push(renderDiffMarkdown(diff, { base: baseRef, head: 'this change' }));
  else if (diffNote) out.push(`_${diffNote}_`);
  const text = `${out.join('\n').trimEnd()}\n`;
  // GitHub refuses comments over 65,536 characters.
  return text.length > MAX_COMMENT ? `${text.slice(0, MAX_COMMENT)}\n\n_… report truncated; the job summary and \`ct policy diff --format json\` have everything._\n` : text;
}

// What the report lists comes from the pull request: policy and test file names, test case names,
// messages quoting a file. A newline there would end the listing's line and a ``` line close its
// code block, and the change would write its own markdown into the bot's comment (a fake "✅
// passed" heading). Each listed item stays on one line, its control, format and line-separator
// characters escaped; and the fence is longer than any run of backticks inside it, so nothing in
// the block can close it.
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;
const UNSAFE_ALL = new RegExp(UNSAFE.source, 'gu');
const SHORT: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };
const hexEscape = (c: string) => {
  const n = c.codePointAt(0)!;
  return n > 0xffff ? `\\u{${n.toString(16)}}` : `\\u${n.toString(16).padStart(4, '0')}`;
};

/** A message on one line: control characters as escapes (`\n`, `\u001b`, …). */
function oneLine(s: string): string {
  return s.replace(UNSAFE_ALL, (c) => SHORT[c] ?? hexEscape(c));
}

/**
 * A file name as it is when it holds only printable characters; otherwise quoted as JSON (with the
 * characters JSON leaves alone escaped too), so that an escaped newline and a name spelled with a
 * backslash and an n stay apart.
 */
function showPath(p: string): string {
  return UNSAFE.test(p) ? JSON.stringify(p).replace(UNSAFE_ALL, hexEscape) : p;
}

function issueLine(i: PolicyIssue): string {
  return formatIssue({ ...i, file: showPath(i.file), kind: oneLine(i.kind), message: oneLine(i.message) });
}

/** Characters of one listed line at most (a crafted name can be any length): longer is cut, with an ellipsis. */
const MAX_LINE = 1_000;

/**
 * A code block whose fence no line inside can close: one backtick longer than the longest run.
 * Counted with a loop: a name of 200,000 backtick runs spread into Math.max overflowed the stack.
 */
function fenced(lines: string[]): string[] {
  const cut = lines.map((l) => (l.length > MAX_LINE ? `${l.slice(0, /[\uD800-\uDBFF]/.test(l[MAX_LINE - 1]) ? MAX_LINE - 1 : MAX_LINE)}…` : l));
  let longest = 0;
  for (const l of cut) {
    let run = 0;
    for (const c of l) {
      run = c === '`' ? run + 1 : 0;
      if (run > longest) longest = run;
    }
  }
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return [fence, ...cut, fence];
}
