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
  /**
   * Login whose comment is the report (`my-app[bot]`), overriding the one derived from the token:
   * see commentAuthor() below.
   */
  commentAuthor?: string;
}

/** The identity of a workflow's GITHUB_TOKEN: comments made with it carry this login. */
export const GITHUB_ACTIONS_BOT = 'github-actions[bot]';

export function gitHubNotifier(t: GitHubTarget): Notifier {
  // Octokit's own log would print the 403 GET /user expects for an installation token as an error
  // in the job log; failures reach the caller as exceptions anyway.
  const octokit = new Octokit({ auth: t.token, baseUrl: t.baseUrl, request: { retries: 0 }, log: { debug() {}, info() {}, warn: console.warn, error() {} } });
  // Whose comment is the report. Anyone who may comment can write the marker: a comment found by
  // the marker alone would be someone else's, which the action then rewrote (or, not allowed to,
  // failed on). The token's own identity is the one GitHub names as the `creator` of the commit
  // status just posted with it (run() sets the status first; `creator` is in every status GitHub
  // answers): for a user's token its user, for an installation token the App's bot (`my-app[bot]`;
  // GET /user refuses such a token with 403 "Resource not accessible by integration", GET /app
  // wants the App's JWT). Before, an installation token was guessed to be the workflow's
  // GITHUB_TOKEN, and any other App's got a new comment on every run. Without a status creator
  // (none posted, or null), GET /user, and on its 403 github-actions[bot]. A wrong guess costs a
  // second comment, never someone else's being edited.
  let statusCreator: string | undefined;
  const commentAuthor = async (): Promise<string> => {
    if (t.commentAuthor) return t.commentAuthor;
    if (statusCreator) return statusCreator;
    try {
      return (await octokit.rest.users.getAuthenticated()).data.login;
    } catch (e) {
      if ((e as { status?: number }).status === 403) return GITHUB_ACTIONS_BOT;
      throw e;
    }
  };
  return {
    async upsertComment(body) {
      if (t.pr === undefined) return { id: 0, created: false };
      const text = body.includes(COMMENT_MARKER) ? body : `${COMMENT_MARKER}\n${body}`;
      // Logins are case-insensitive on GitHub; `[bot]` logins cannot be taken by a person.
      const me = (await commentAuthor()).toLowerCase();
      const comments = await octokit.paginate(octokit.rest.issues.listComments, { owner: t.owner, repo: t.repo, issue_number: t.pr, per_page: 100 });
      const mine = comments.find((c) => c.user?.login.toLowerCase() === me && typeof c.body === 'string' && c.body.includes(COMMENT_MARKER));
      if (mine) {
        await octokit.rest.issues.updateComment({ owner: t.owner, repo: t.repo, comment_id: mine.id, body: text });
        return { id: mine.id, created: false };
      }
      const res = await octokit.rest.issues.createComment({ owner: t.owner, repo: t.repo, issue_number: t.pr, body: text });
      return { id: res.data.id, created: true };
    },
    async setStatus(state: StatusState, description: string, targetUrl?: string) {
      const res = await octokit.rest.repos.createCommitStatus({
        owner: t.owner,
        repo: t.repo,
        sha: t.sha,
        state,
        context: STATUS_CONTEXT,
        description: description.slice(0, 140),
        ...(targetUrl ? { target_url: targetUrl } : {}),
      });
      const login = res.data.creator?.login;
      if (typeof login === 'string' && login) statusCreator = login;
    },
  };
}
