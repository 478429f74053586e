/**
 * Loading a policy repository: find the policy files, parse them with positions, validate them
 * against the schema, compile them and check them against each other. Any error anywhere fails
 * the whole load (POLICY_INVALID with every issue in `details.issues`); nothing is half-loaded.
 *
 * Which files are policies: `policy.{yaml,yml,json}` and `*.policy.{yaml,yml,json}`. Suites are
 * `suite.{yaml,yml,json}` and `*.test.{yaml,yml,json}`. Everything else (fixtures, schemas, docs)
 * is ignored, so a fixture can never be mistaken for a policy.
 */
import { basename } from 'node:path';
import { sha256Hex } from '../core/digest.js';
import { compilePolicy } from './compile.js';
import { IssueSink, policyInvalid, type PolicyIssue } from './issues.js';
import { checkConflicts } from './overlap.js';
import { PolicySet } from './policy-set.js';
import { parseSource } from './source.js';
import type { CompiledPolicy } from './types.js';
import { readPolicySources, tooLargeIssue, type SourceText } from './read-sources.js';

// Reading lives in read-sources.ts (a reader process imports only that); its names are kept here too.
export { isPolicyFile, isSuiteFile, MAX_REPO_FILES, readPolicySources, walkRepo, type SourceText } from './read-sources.js';

export interface LoadResult {
  set?: PolicySet;
  issues: PolicyIssue[];
}

/**
 * Compiled files by path, name and content digest: a reload recompiles only what changed
 * (compiled policies are immutable, so reusing them is safe). Owned by a PolicyStore.
 */
export type CompileCache = Map<string, { policy?: CompiledPolicy; issues: PolicyIssue[] }>;

/** The synchronous core: texts → a set, or the issues that prevent one. */
export function compileTexts(texts: readonly SourceText[], cache?: CompileCache): LoadResult {
  const sink = new IssueSink();
  const policies: CompiledPolicy[] = [];
  const used = new Set<string>();
  for (const t of texts) {
    const name = t.defaultName ?? defaultNameFor(t.file);
    // A too-large file has no text: its key says so (an empty file at the same path is another entry).
    const key = cache ? `${t.file}\0${name}\0${t.tooLarge ? 'too-large' : sha256Hex(t.text)}` : '';
    const hit = cache?.get(key);
    if (hit) {
      used.add(key);
      sink.issues.push(...hit.issues);
      if (hit.policy) policies.push(hit.policy);
      continue;
    }
    const own = new IssueSink();
    const parsed = t.tooLarge ? { source: undefined, issues: [tooLargeIssue(t.file)] } : parseSource(t.file, t.text);
    own.issues.push(...parsed.issues);
    const p = parsed.source ? compilePolicy(parsed.source, t.text, name, own) : undefined;
    sink.issues.push(...own.issues);
    if (p) policies.push(p);
    if (cache) {
      cache.set(key, { policy: p, issues: own.issues });
      used.add(key);
    }
  }
  if (cache) for (const k of [...cache.keys()]) if (!used.has(k)) cache.delete(k);
  checkConflicts(policies, sink);
  if (sink.hasErrors) return { issues: sink.issues };
  return { set: new PolicySet(policies), issues: sink.issues };
}

function defaultNameFor(file: string): string {
  return basename(file).replace(/\.(ya?ml|json)$/, '');
}

/** How the policy files' texts are read (readPolicySources; the host agent's reads in a child it can kill). */
export type PolicyReader = (paths: readonly string[]) => Promise<SourceText[]>;

/** Loads and compiles a repository; throws POLICY_INVALID listing every issue when anything is wrong. */
export async function loadPolicies(paths: readonly string[], cache?: CompileCache, read: PolicyReader = readPolicySources): Promise<{ set: PolicySet; issues: PolicyIssue[] }> {
  const result = compileTexts(await read(paths), cache);
  if (!result.set) throw policyInvalid(result.issues);
  return { set: result.set, issues: result.issues };
}
