/**
 * The commit status every action posts (`cerro-torre/build`, `cerro-torre/verify`, …) through
 * Octokit: GitHub's `POST /repos/{owner}/{repo}/statuses/{sha}`, whose description is at most 140
 * characters and whose target_url points at the run. A status that cannot be posted is a warning:
 * the step's own outcome (and exit code) is what gates the workflow.
 */
import { Octokit } from '@octokit/rest';
import { runUrl, type RunnerContext } from './context.js';

export type StatusState = 'pending' | 'success' | 'failure' | 'error';

export interface CommitStatus {
  state: StatusState;
  context: string;
  description: string;
}

export interface StatusTarget {
  token: string;
  ctx: RunnerContext;
  /** Commit to mark; default the run's GITHUB_SHA. */
  sha?: string;
}

/** GitHub rejects descriptions longer than 140 characters (422): shorten with an ellipsis. */
export function statusDescription(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length <= 140 ? oneLine : `${oneLine.slice(0, 139)}…`;
}

/** Posts one status; answers why it was not posted, or undefined when it was. */
export type StatusReporter = (status: CommitStatus) => Promise<string | undefined>;

/** The GitHub reporter, or none without a token. */
export function githubReporter(target: StatusTarget): StatusReporter | undefined {
  return target.token ? (s) => postCommitStatus(target, s) : undefined;
}

/** Why a status was not posted, or undefined when it was. */
export async function postCommitStatus(target: StatusTarget, status: CommitStatus): Promise<string | undefined> {
  const sha = target.sha ?? target.ctx.sha;
  if (!target.token) return 'no token: commit status not posted';
  if (!target.ctx.repository || !sha) return 'GITHUB_REPOSITORY / GITHUB_SHA not set: commit status not posted';
  const [owner, repo] = target.ctx.repository.split('/');
  const octokit = new Octokit({ auth: target.token, baseUrl: target.ctx.apiUrl, userAgent: 'cerro-torre-action', request: { retries: 0 } });
  const targetUrl = runUrl(target.ctx);
  try {
    await octokit.rest.repos.createCommitStatus({
      owner,
      repo,
      sha,
      state: status.state,
      context: status.context,
      description: statusDescription(status.description),
      ...(targetUrl ? { target_url: targetUrl } : {}),
      request: { signal: AbortSignal.timeout(15_000) },
    });
    return undefined;
  } catch (e) {
    const err = e as { status?: number; message?: string };
    return `commit status ${status.context} not posted: ${err.status ? `HTTP ${err.status} ` : ''}${err.message ?? String(e)}`;
  }
}
