/**
 * The one check on a policies root taken from a pull request's checkout, made before anything under
 * it is read: neither the root nor any directory between the working directory and it may be a
 * symbolic link, and the root's real path must be where its path says. A pull request that makes
 * `policies` a link to `.` would put the checkout's .git/config (the job's credentials) "inside the
 * policy repository"; a link to a directory of the CI machine would have its policy-named files
 * parsed and quoted into the report.
 */
import { lstat, realpath } from 'node:fs/promises';
import { isAbsolute, join, parse, relative, resolve, sep } from 'node:path';
import { asIoError } from '../core/errors.js';
import type { PolicyIssue } from './issues.js';

/** Errors that mean "not there (yet)": the reader that comes next reports a missing root itself. */
const MISSING = new Set(['ENOENT', 'ENOTDIR']);

/**
 * The `root-symlink` problem of `root` (a path as given: relative to `workdir`, `..` allowed), or
 * undefined when the root is a real directory reached without links, or does not exist. Paths
 * outside `workdir` are checked from the filesystem root.
 */
export async function policiesRootProblem(root: string, workdir: string = process.cwd()): Promise<PolicyIssue | undefined> {
  const base = resolve(workdir);
  const target = resolve(base, root); // lexical: `..` taken away here, so the checked paths are the ones walked
  const rel = relative(base, target);
  const inside = rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
  const from = inside ? base : parse(target).root;
  const segs = relative(from, target).split(sep).filter((s) => s !== '');
  const refuse = (link: string, why: string): PolicyIssue => ({ file: root, line: 1, column: 1, severity: 'error', kind: 'root-symlink', message: `${link} ${why}: the policies directory must be a real directory, reached without symbolic links` });
  let p = from;
  for (const s of segs) {
    p = join(p, s);
    try {
      if ((await lstat(p)).isSymbolicLink()) return refuse(inside ? relative(base, p) || '.' : p, 'is a symbolic link');
    } catch (e) {
      if (MISSING.has((e as NodeJS.ErrnoException).code ?? '')) return undefined;
      throw asIoError(e, p);
    }
  }
  // No link on the way, yet the real path must match too (a bind mount or a link above `workdir`
  // is the caller's own setup, so the comparison is with the working directory's real path).
  let real: string;
  try {
    real = await realpath(target);
  } catch (e) {
    if (MISSING.has((e as NodeJS.ErrnoException).code ?? '')) return undefined;
    throw asIoError(e, target);
  }
  const expected = inside ? join(await realpath(base), rel) : target;
  return real === expected ? undefined : refuse(root, 'resolves to another place');
}

/** The first root problem among `paths` (each a policies root or file, as `ct policy lint` takes them). */
export async function firstRootProblem(paths: readonly string[], workdir?: string): Promise<PolicyIssue | undefined> {
  for (const p of paths) {
    const problem = await policiesRootProblem(p, workdir);
    if (problem) return problem;
  }
  return undefined;
}
