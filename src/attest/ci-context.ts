import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { decodeJwt } from 'jose';
import { CtError } from '../core/errors.js';

/**
 * Where and how a build ran, read from the CI's own variables (and OIDC claims when given) or, for
 * a local build, from the git checkout. This is the raw material of the SLSA provenance predicate
 * (slsa.ts); keeping it a plain value lets tests feed simulated GitHub and GitLab environments.
 */
export interface SourceInfo {
  /** `git+https://host/owner/repo` style URI (SLSA resourceUri of the source). */
  uri: string;
  commit?: string;
  ref?: string;
}

export interface CiContext {
  kind: 'github' | 'gitlab' | 'local';
  builderId: string;
  buildType: string;
  invocationId?: string;
  startedOn?: string;
  source?: SourceInfo;
  externalParameters: Record<string, unknown>;
  internalParameters: Record<string, unknown>;
}

export const GITHUB_BUILD_TYPE = 'https://actions.github.io/buildtypes/workflow/v1';
export const GITLAB_BUILD_TYPE = 'https://cerro-torre.dev/buildtypes/gitlab-ci/v1';
export const LOCAL_BUILD_TYPE = 'https://cerro-torre.dev/buildtypes/local/v1';
export const LOCAL_BUILDER_ID = 'https://cerro-torre.dev/local';

/** OIDC claims we read (GitHub Actions and GitLab ID tokens); all optional. */
export type OidcClaims = Record<string, unknown>;

/** Decodes the claims of an OIDC token without verifying it: they only fill in provenance fields. */
export function claimsFromToken(token: string): OidcClaims {
  try {
    return decodeJwt(token.trim()) as OidcClaims;
  } catch (e) {
    throw new CtError('USAGE', 'OIDC token is not a JWT', {}, { cause: e });
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

function need(env: NodeJS.ProcessEnv, names: string[], ci: string): void {
  const missing = names.filter((n) => !env[n]);
  if (missing.length) throw new CtError('USAGE', `${ci} environment incomplete: ${missing.join(', ')} not set`, { missing });
}

/** Picks the CI from the environment: GITHUB_ACTIONS=true, GITLAB_CI=true, otherwise local. */
export function detectCi(env: NodeJS.ProcessEnv): CiContext['kind'] {
  if (env.GITHUB_ACTIONS === 'true') return 'github';
  if (env.GITLAB_CI === 'true') return 'gitlab';
  return 'local';
}

/**
 * GitHub Actions, shaped like actions/attest-build-provenance so that verifiers that know that
 * build type read ours: the workflow (repository, path, ref) as external parameters, repository
 * and owner ids, event and runner environment as internal ones. Claims of the job's OIDC token win
 * over the environment when given (they are what Fulcio certifies); `job_workflow_ref` names the
 * reusable workflow that actually ran, which is the builder.
 */
export function githubContext(env: NodeJS.ProcessEnv, claims: OidcClaims = {}): CiContext {
  need(env, ['GITHUB_REPOSITORY', 'GITHUB_SHA', 'GITHUB_REF', 'GITHUB_RUN_ID'], 'GitHub Actions');
  const server = (str(env.GITHUB_SERVER_URL) ?? 'https://github.com').replace(/\/+$/, '');
  const repository = str(claims.repository) ?? env.GITHUB_REPOSITORY!;
  const sha = str(claims.sha) ?? env.GITHUB_SHA!;
  const ref = str(claims.ref) ?? env.GITHUB_REF!;
  const workflowRef = str(claims.workflow_ref) ?? str(env.GITHUB_WORKFLOW_REF);
  const jobWorkflowRef = str(claims.job_workflow_ref) ?? workflowRef;
  const runId = str(claims.run_id) ?? env.GITHUB_RUN_ID!;
  const attempt = str(claims.run_attempt) ?? str(env.GITHUB_RUN_ATTEMPT) ?? '1';
  let workflowPath: string | undefined;
  let workflowRefName: string | undefined;
  if (workflowRef) {
    const at = workflowRef.lastIndexOf('@');
    const path = at >= 0 ? workflowRef.slice(0, at) : workflowRef;
    workflowPath = path.startsWith(`${repository}/`) ? path.slice(repository.length + 1) : path;
    workflowRefName = at >= 0 ? workflowRef.slice(at + 1) : undefined;
  }
  const internal: Record<string, unknown> = {};
  const put = (k: string, v: string | undefined) => {
    if (v !== undefined) internal[k] = v;
  };
  put('event_name', str(claims.event_name) ?? str(env.GITHUB_EVENT_NAME));
  put('repository_id', str(claims.repository_id) ?? str(env.GITHUB_REPOSITORY_ID));
  put('repository_owner_id', str(claims.repository_owner_id) ?? str(env.GITHUB_REPOSITORY_OWNER_ID));
  put('runner_environment', str(claims.runner_environment) ?? str(env.RUNNER_ENVIRONMENT));
  return {
    kind: 'github',
    builderId: jobWorkflowRef ? `${server}/${jobWorkflowRef}` : `${server}/${repository}/.github/workflows`,
    buildType: GITHUB_BUILD_TYPE,
    invocationId: `${server}/${repository}/actions/runs/${runId}/attempts/${attempt}`,
    source: { uri: `git+${server}/${repository}@${ref}`, commit: sha, ref },
    externalParameters: { workflow: { ref: workflowRefName ?? ref, repository: `${server}/${repository}`, ...(workflowPath ? { path: workflowPath } : {}) } },
    internalParameters: { github: internal },
  };
}

/**
 * GitLab CI from its predefined variables (CI_*), with the ID token's claims preferred when given.
 * The builder is the runner (GitLab's own provenance names it the same way); the invocation is the
 * job URL.
 */
export function gitlabContext(env: NodeJS.ProcessEnv, claims: OidcClaims = {}): CiContext {
  need(env, ['CI_SERVER_URL', 'CI_PROJECT_PATH', 'CI_COMMIT_SHA', 'CI_JOB_ID'], 'GitLab CI');
  const server = env.CI_SERVER_URL!.replace(/\/+$/, '');
  const project = str(claims.project_path) ?? env.CI_PROJECT_PATH!;
  const projectUrl = str(env.CI_PROJECT_URL) ?? `${server}/${project}`;
  const sha = str(claims.sha) ?? env.CI_COMMIT_SHA!;
  const refName = str(claims.ref) ?? str(env.CI_COMMIT_REF_NAME) ?? str(env.CI_COMMIT_TAG) ?? str(env.CI_COMMIT_BRANCH);
  const refType = str(claims.ref_type) ?? (env.CI_COMMIT_TAG ? 'tag' : 'branch');
  const fullRef = refName ? `refs/${refType === 'tag' ? 'tags' : 'heads'}/${refName}` : undefined;
  const internal: Record<string, unknown> = {};
  const put = (k: string, v: string | undefined) => {
    if (v !== undefined) internal[k] = v;
  };
  put('project_id', str(claims.project_id) ?? str(env.CI_PROJECT_ID));
  put('namespace_id', str(claims.namespace_id) ?? str(env.CI_PROJECT_NAMESPACE_ID));
  put('pipeline_id', str(claims.pipeline_id) ?? str(env.CI_PIPELINE_ID));
  put('pipeline_source', str(claims.pipeline_source) ?? str(env.CI_PIPELINE_SOURCE));
  put('runner_id', str(claims.runner_id) ?? str(env.CI_RUNNER_ID));
  put('runner_environment', str(claims.runner_environment));
  const external: Record<string, unknown> = { source: projectUrl, ...(fullRef ? { ref: fullRef } : {}), config_path: str(env.CI_CONFIG_PATH) ?? '.gitlab-ci.yml' };
  if (env.CI_JOB_NAME) external.job = env.CI_JOB_NAME;
  return {
    kind: 'gitlab',
    builderId: env.CI_RUNNER_ID ? `${server}/${project}/-/runners/${env.CI_RUNNER_ID}` : `${server}/${project}/-/runners`,
    buildType: GITLAB_BUILD_TYPE,
    invocationId: str(env.CI_JOB_URL) ?? `${projectUrl}/-/jobs/${env.CI_JOB_ID}`,
    startedOn: str(env.CI_JOB_STARTED_AT),
    source: { uri: `git+${projectUrl}${fullRef ? `@${fullRef}` : ''}`, commit: sha, ref: fullRef },
    externalParameters: external,
    internalParameters: { gitlab: internal },
  };
}

/** A local build: our builder id, and the git checkout of `dir` when there is one. */
export async function localContext(dir: string, invocationId?: string): Promise<CiContext> {
  const git = await readGit(dir);
  return {
    kind: 'local',
    builderId: LOCAL_BUILDER_ID,
    buildType: LOCAL_BUILD_TYPE,
    invocationId,
    source: git,
    externalParameters: git ? { source: git.uri, ...(git.ref ? { ref: git.ref } : {}) } : {},
    internalParameters: {},
  };
}

export async function ciContext(opts: { env?: NodeJS.ProcessEnv; claims?: OidcClaims; dir?: string; invocationId?: string } = {}): Promise<CiContext> {
  const env = opts.env ?? process.env;
  switch (detectCi(env)) {
    case 'github':
      return githubContext(env, opts.claims);
    case 'gitlab':
      return gitlabContext(env, opts.claims);
    default:
      return localContext(opts.dir ?? process.cwd(), opts.invocationId);
  }
}

/**
 * Reads HEAD, its commit and the origin URL straight from the .git directory (walking up from
 * `dir`), so provenance never depends on a git binary. Packed refs and worktree `.git` files are
 * handled; anything unreadable means "no git information", not an error.
 */
export async function readGit(dir: string): Promise<SourceInfo | undefined> {
  let cur = resolve(dir);
  for (;;) {
    const dotgit = join(cur, '.git');
    const st = await stat(dotgit).catch(() => undefined);
    if (st) {
      let gitDir = dotgit;
      if (st.isFile()) {
        const m = /^gitdir:\s*(.+)$/m.exec(await readFile(dotgit, 'utf8').catch(() => ''));
        if (!m) return undefined;
        gitDir = isAbsolute(m[1].trim()) ? m[1].trim() : join(cur, m[1].trim());
      }
      return readGitDir(gitDir, cur);
    }
    const parent = resolve(cur, '..');
    if (parent === cur) return undefined;
    cur = parent;
  }
}

async function readGitDir(gitDir: string, workTree: string): Promise<SourceInfo | undefined> {
  const head = (await readFile(join(gitDir, 'HEAD'), 'utf8').catch(() => '')).trim();
  if (!head) return undefined;
  // A worktree's refs live in the common dir.
  const common = (await readFile(join(gitDir, 'commondir'), 'utf8').catch(() => '')).trim();
  const commonDir = common ? resolve(gitDir, common) : gitDir;
  let ref: string | undefined;
  let commit: string | undefined;
  if (head.startsWith('ref:')) {
    ref = head.slice(4).trim();
    commit = (await readFile(join(commonDir, ref), 'utf8').catch(() => '')).trim() || undefined;
    if (!commit) {
      const packed = await readFile(join(commonDir, 'packed-refs'), 'utf8').catch(() => '');
      const line = packed.split('\n').find((l) => l.endsWith(` ${ref}`));
      commit = line?.split(' ')[0];
    }
  } else {
    commit = head;
  }
  if (commit && !/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(commit)) commit = undefined;
  const config = await readFile(join(commonDir, 'config'), 'utf8').catch(() => '');
  const origin = /\[remote "origin"\][^[]*?^\s*url\s*=\s*(.+)$/m.exec(config)?.[1]?.trim();
  const url = origin ? normalizeGitUrl(origin) : `file://${workTree}`;
  return { uri: `git+${url}${ref ? `@${ref}` : ''}`, commit, ref };
}

/** `git@host:owner/repo.git` → `https://host/owner/repo.git`; credentials in URLs are dropped. */
function normalizeGitUrl(u: string): string {
  const scp = /^([\w.-]+@)?([\w.-]+):(?!\/)(.+)$/.exec(u);
  if (scp && !u.includes('://')) return `https://${scp[2]}/${scp[3]}`;
  try {
    const url = new URL(u);
    url.username = '';
    url.password = '';
    return url.href;
  } catch {
    return u;
  }
}
