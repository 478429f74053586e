/**
 * Gatekeeper policy engine: public API (see docs/policy.md). `evidenceFromCtp` (verify a .ctp and
 * hand its evidence to the engine) lives in ./ctp-evidence.js, kept out of this index so that the
 * policy-check action does not bundle the verifiers.
 */
export { evaluate, matches } from './evaluate.js';
export { loadPolicies, compileTexts, readPolicySources, isPolicyFile, isSuiteFile, type SourceText, type LoadResult } from './load.js';
export { PolicySet } from './policy-set.js';
export { PolicyStore, type ReloadOutcome } from './store.js';
export { lintTexts, KNOWN_PREDICATE_TYPES, type LintResult } from './lint.js';
export { runPolicyTests, toJUnit, type TestReport, type CaseResult, type TestOptions } from './suite.js';
export { diffPolicySets, parseDeployments, readDeployments, renderDiffMarkdown, type Deployment, type DiffResult, type DiffRow } from './diff.js';
export { readPolicySourcesAtRev } from './git-source.js';
export { policiesRootProblem, firstRootProblem } from './root.js';
export { readPolicyInput } from './input.js';
export { readBundleFacts } from './bundle-facts.js';
export { renderDecision, decisionRecord, exitCodeForDecision } from './explain.js';
export { formatIssue, type PolicyIssue } from './issues.js';
export { VIOLATION_CODES, type ViolationCode } from './codes.js';
export type { BundleFacts, CompiledPolicy, Decision, HostFacts, PolicyInput, Violation } from './types.js';
