/**
 * Commit statuses on GitLab through Gitbeaker: `POST /projects/:id/statuses/:sha` with state
 * (pending | running | success | failed | canceled), name, description and target_url (the job's
 * page). GitHub's `failure`/`error` are GitLab's `failed`.
 */
import { Gitlab } from '@gitbeaker/rest';
import { statusDescription, type StatusReporter } from './status.js';

export interface GitlabTarget {
  /** GitLab API base URL, e.g. https://gitlab.com (CI_SERVER_URL). */
  host: string;
  token: string;
  /** Token kind: a project/personal access token (PRIVATE-TOKEN) or an OAuth token. */
  kind: 'private' | 'oauth';
  projectId: string;
  sha: string;
  ref?: string;
  pipelineId?: number;
  targetUrl?: string;
}

const STATE = { pending: 'pending', success: 'success', failure: 'failed', error: 'failed' } as const;

export function gitlabReporter(t: GitlabTarget): StatusReporter {
  const api = new Gitlab(t.kind === 'oauth' ? { host: t.host, oauthToken: t.token } : { host: t.host, token: t.token });
  return async (s) => {
    try {
      await api.Commits.editStatus(t.projectId, t.sha, STATE[s.state], {
        name: s.context,
        description: statusDescription(s.description),
        ...(t.targetUrl ? { targetUrl: t.targetUrl } : {}),
        ...(t.ref ? { ref: t.ref } : {}),
        ...(t.pipelineId ? { pipelineId: t.pipelineId } : {}),
      });
      return undefined;
    } catch (e) {
      const err = e as { cause?: { response?: { status?: number } }; message?: string };
      return `commit status ${s.context} not posted to GitLab: ${err.cause?.response?.status ? `HTTP ${err.cause.response.status} ` : ''}${err.message ?? String(e)}`;
    }
  };
}

/** The reporter for a GitLab CI job (CI_* variables), or none without a token. */
export function gitlabReporterFromEnv(env: NodeJS.ProcessEnv, token: string | undefined): StatusReporter | undefined {
  // In a merged-results pipeline too: CI_COMMIT_SHA with this pipeline's id, so the status joins
  // the MR's pipeline (on another commit without pipeline_id GitLab makes a separate external
  // pipeline, runatlantis/atlantis#2489).
  if (!token || !env.CI_SERVER_URL || !env.CI_PROJECT_ID || !env.CI_COMMIT_SHA) return undefined;
  return gitlabReporter({
    host: env.CI_SERVER_URL,
    token,
    kind: env.CT_GITLAB_TOKEN_KIND === 'oauth' ? 'oauth' : 'private',
    projectId: env.CI_PROJECT_ID,
    sha: env.CI_COMMIT_SHA,
    ref: env.CI_COMMIT_REF_NAME || undefined,
    pipelineId: env.CI_PIPELINE_ID ? Number(env.CI_PIPELINE_ID) : undefined,
    targetUrl: env.CI_JOB_URL || undefined,
  });
}
