/**
 * Policy files of a git revision, read with `git ls-tree` / `git show` straight into memory (no
 * checkout, no temp files): what `ct policy diff BASE HEAD` compares when BASE or HEAD is a rev.
 */
import { execFile } from 'node:child_process';
import { basename } from 'node:path';
import { promisify } from 'node:util';
import { CtError } from '../core/errors.js';
import { isPolicyFile, MAX_REPO_FILES, type SourceText } from './load.js';

const run = promisify(execFile);
const REV = /^[A-Za-z0-9._/@^~{}-]{1,200}$/;

async function git(repo: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run('git', ['-C', repo, ...args], { maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new CtError('IO_ERROR', `git ${args[0]} in ${repo}: ${(err.stderr || err.message).trim().split('\n')[0]}`, { repo, args });
  }
}

/** Policy sources under `path` (relative to the repository root) at `rev`. */
export async function readPolicySourcesAtRev(repo: string, rev: string, path = '.'): Promise<SourceText[]> {
  if (!REV.test(rev) || rev.startsWith('-')) throw new CtError('USAGE', `not a git revision: ${JSON.stringify(rev)}`, { rev });
  const commit = (await git(repo, ['rev-parse', '--verify', '--end-of-options', `${rev}^{commit}`])).trim();
  const prefix = (await git(repo, ['rev-parse', '--show-prefix'])).trim();
  const listing = await git(repo, ['ls-tree', '-r', '-z', '--name-only', '--full-name', commit, '--', path]);
  const files = listing.split('\0').filter((f) => f && isPolicyFile(basename(f)) && !f.split('/').some((s) => s.startsWith('.') || s === 'node_modules'));
  if (files.length > MAX_REPO_FILES) throw new CtError('POLICY_INVALID', `${rev}: more than ${MAX_REPO_FILES} policy files`, { rev });
  const out: SourceText[] = [];
  for (const f of files.sort()) {
    const text = await git(repo, ['show', `${commit}:${f}`]);
    const root = `${prefix}${path === '.' ? '' : `${path.replace(/^\.\//, '').replace(/\/+$/, '')}/`}`;
    const rel = f.startsWith(root) ? f.slice(root.length) : f;
    out.push({ file: `${rev}:${rel}`, text, defaultName: rel.replace(/\.(ya?ml|json)$/, '').replace(/\//g, '.').toLowerCase().replace(/[^a-z0-9._-]/g, '-') });
  }
  return out;
}
