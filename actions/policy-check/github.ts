/** GitHub provider of the policy check: issue comments and commit statuses through Octokit. */
import { Octokit } from '@octokit/rest';
import { COMMENT_MARKER, STATUS_CONTEXT, type Notifier, type StatusState } from './notifier.js';

export interface GitHubTarget {
  token: string;
  /** https://api.github.com, or GITHUB_API_URL on GitHub Enterprise (or a test stand-in). */
  baseUrl: string;
  owner: string;
  repo: string;
  sha: string;
  /** Pull request number; without one only the status is set. */
  pr?: number;
}

export function gitHubNotifier(t: GitHubTarget): Notifier {
  const octokit = new Octokit({ auth: t.token, baseUrl: t.baseUrl, request: { retries: 0 } });
  return {
    async upsertComment(body) {
      if (t.pr === undefined) return { id: 0, created: false };
      const text = body.includes(COMMENT_MARKER) ? body : `${COMMENT_MARKER}\n${body}`;
      const comments = await octokit.paginate(octokit.rest.issues.listComments, { owner: t.owner, repo: t.repo, issue_number: t.pr, per_page: 100 });
      const mine = comments.find((c) => typeof c.body === 'string' && c.body.includes(COMMENT_MARKER));
      if (mine) {
        await octokit.rest.issues.updateComment({ owner: t.owner, repo: t.repo, comment_id: mine.id, body: text });
        return { id: mine.id, created: false };
      }
      const res = await octokit.rest.issues.createComment({ owner: t.owner, repo: t.repo, issue_number: t.pr, body: text });
      return { id: res.data.id, created: true };
    },
    async setStatus(state: StatusState, description: string, targetUrl?: string) {
      await octokit.rest.repos.createCommitStatus({
        owner: t.owner,
        repo: t.repo,
        sha: t.sha,
        state,
        context: STATUS_CONTEXT,
        description: description.slice(0, 140),
        ...(targetUrl ? { target_url: targetUrl } : {}),
      });
    },
  };
}
