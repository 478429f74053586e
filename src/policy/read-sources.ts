/**
 * Finding and reading a policy repository's files: the texts loadPolicies (load.ts) compiles.
 * Kept apart from the compiler, so that a process that only reads (the host agent's policy reader
 * child, host/agent/policy-reader-child.ts) loads nothing else: importing load.ts pulled in the
 * whole compiler and the YAML parser at every reload (~0.14 s of CPU and 58 MB each).
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { asIoError, CtError } from '../core/errors.js';
import { readRegularFile } from '../core/fs.js';
import type { PolicyIssue } from './issues.js';

export const MAX_REPO_FILES = 10000;
/** Bytes of one policy (or suite) file at most: a larger one is POLICY_INVALID, kind too-large. */
export const MAX_POLICY_FILE_BYTES = 1024 * 1024;
const POLICY_FILE = /(^|\.)policy\.(ya?ml|json)$/;
const SUITE_FILE = /(^suite|\.test)\.(ya?ml|json)$/;

export function isPolicyFile(name: string): boolean {
  return POLICY_FILE.test(name);
}
export function isSuiteFile(name: string): boolean {
  return SUITE_FILE.test(name);
}

/** The issue of a file larger than MAX_POLICY_FILE_BYTES (parseSource's). */
export function tooLargeIssue(file: string): PolicyIssue {
  return { file, line: 1, column: 1, severity: 'error', kind: 'too-large', message: `file larger than ${MAX_POLICY_FILE_BYTES} bytes` };
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
  /** Larger than MAX_POLICY_FILE_BYTES (its text then empty): POLICY_INVALID, too-large, when compiled. */
  tooLarge?: true;
}

/**
 * Reads the policy files at the given paths (files, or directories searched recursively). A file
 * larger than MAX_POLICY_FILE_BYTES is read only a little past that (its text then fails to parse
 * as too-large, parseSource), whichever process reads it: the host agent's reader child answered
 * IO_ERROR for a file over its 64 MiB answer cap, in-process it was POLICY_INVALID.
 */
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
      // The operator's files: a link or a FIFO named by --policies is read as given (as before).
      // A larger file is read no further: its text, longer than the limit, is parseSource's too-large issue.
      const bytes = await readRegularFile(file, MAX_POLICY_FILE_BYTES, 'policy file', { operatorPath: true, keepOver: true });
      const rel = root ? relative(root, file) : basename(file);
      const defaultName = rel.replace(/\.(ya?ml|json)$/, '').replace(/[\\/]/g, '.').toLowerCase().replace(/[^a-z0-9._-]/g, '-');
      // Not its text: the host agent's reader child sends the texts over a pipe capped at 64 MiB,
      // which some 60 oversized files filled (IO_ERROR there, POLICY_INVALID in-process).
      if (bytes.length > MAX_POLICY_FILE_BYTES) return { file, text: '', defaultName, tooLarge: true as const };
      return { file, text: bytes.toString('utf8'), defaultName };
    }),
  );
}
