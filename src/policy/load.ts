/**
 * Loading a policy repository: find the policy files, parse them with positions, validate them
 * against the schema, compile them and check them against each other. Any error anywhere fails
 * the whole load (POLICY_INVALID with every issue in `details.issues`); nothing is half-loaded.
 *
 * Which files are policies: `policy.{yaml,yml,json}` and `*.policy.{yaml,yml,json}`. Suites are
 * `suite.{yaml,yml,json}` and `*.test.{yaml,yml,json}`. Everything else (fixtures, schemas, docs)
 * is ignored, so a fixture can never be mistaken for a policy.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { asIoError, CtError } from '../core/errors.js';
import { sha256Hex } from '../core/digest.js';
import { compilePolicy } from './compile.js';
import { IssueSink, policyInvalid, type PolicyIssue } from './issues.js';
import { checkConflicts } from './overlap.js';
import { PolicySet } from './policy-set.js';
import { parseSource } from './source.js';
import type { CompiledPolicy } from './types.js';

export const MAX_REPO_FILES = 10000;
const POLICY_FILE = /(^|\.)policy\.(ya?ml|json)$/;
const SUITE_FILE = /(^suite|\.test)\.(ya?ml|json)$/;

export function isPolicyFile(name: string): boolean {
  return POLICY_FILE.test(name);
}
export function isSuiteFile(name: string): boolean {
  return SUITE_FILE.test(name);
}

/** Files under `dir` (sorted, relative paths joined to `dir`), skipping dot-directories and node_modules. */
export async function walkRepo(dir: string, want: (name: string) => boolean): Promise<string[]> {
  const out: string[] = [];
  const visit = async (d: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch (e) {
      throw asIoError(e, d);
    }
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (e.name.startsWith('.') || e.name === 'node_modules') continue;
      const p = join(d, e.name);
      if (e.isDirectory()) await visit(p);
      else if (e.isFile() && want(e.name)) {
        out.push(p);
        if (out.length > MAX_REPO_FILES) throw new CtError('POLICY_INVALID', `${dir}: more than ${MAX_REPO_FILES} policy files`, { dir });
      }
    }
  };
  await visit(dir);
  return out;
}

export interface SourceText {
  file: string;
  text: string;
  /** Name for a v1 policy (which has none): the file's path inside the repository. */
  defaultName?: string;
}

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
    const key = cache ? `${t.file}\0${name}\0${sha256Hex(t.text)}` : '';
    const hit = cache?.get(key);
    if (hit) {
      used.add(key);
      sink.issues.push(...hit.issues);
      if (hit.policy) policies.push(hit.policy);
      continue;
    }
    const own = new IssueSink();
    const parsed = parseSource(t.file, t.text);
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

/** Reads the policy files at the given paths (files, or directories searched recursively). */
export async function readPolicySources(paths: readonly string[]): Promise<SourceText[]> {
  const files: { file: string; root?: string }[] = [];
  for (const p of paths) {
    let st;
    try {
      st = await stat(p);
    } catch (e) {
      throw asIoError(e, p);
    }
    if (st.isDirectory()) for (const f of await walkRepo(p, isPolicyFile)) files.push({ file: f, root: p });
    else files.push({ file: p });
  }
  return Promise.all(
    files.map(async ({ file, root }) => {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (e) {
        throw asIoError(e, file);
      }
      const rel = root ? relative(root, file) : basename(file);
      return { file, text, defaultName: rel.replace(/\.(ya?ml|json)$/, '').replace(/[\\/]/g, '.').toLowerCase().replace(/[^a-z0-9._-]/g, '-') };
    }),
  );
}

/** How the policy files' texts are read (readPolicySources; the host agent's reads in a child it can kill). */
export type PolicyReader = (paths: readonly string[]) => Promise<SourceText[]>;

/** Loads and compiles a repository; throws POLICY_INVALID listing every issue when anything is wrong. */
export async function loadPolicies(paths: readonly string[], cache?: CompileCache, read: PolicyReader = readPolicySources): Promise<{ set: PolicySet; issues: PolicyIssue[] }> {
  const result = compileTexts(await read(paths), cache);
  if (!result.set) throw policyInvalid(result.issues);
  return { set: result.set, issues: result.issues };
}
