/** GitLab provider of the policy check: merge-request notes and commit statuses through Gitbeaker. */
import { Gitlab } from '@gitbeaker/rest';
import { COMMENT_MARKER, STATUS_CONTEXT, type Notifier, type StatusState } from './notifier.js';

export interface GitLabTarget {
  token: string;
  /** https://gitlab.com or the instance URL (CI_SERVER_URL). */
  host: string;
  projectId: string | number;
  sha: string;
  mergeRequestIid?: number;
}

const STATE: Record<StatusState, 'success' | 'failed' | 'pending'> = { success: 'success', failure: 'failed', error: 'failed', pending: 'pending' };

export function gitLabNotifier(t: GitLabTarget): Notifier {
  const api = new Gitlab({ host: t.host, token: t.token });
  return {
    async upsertComment(body) {
      if (t.mergeRequestIid === undefined) return { id: 0, created: false };
      const text = body.includes(COMMENT_MARKER) ? body : `${COMMENT_MARKER}\n${body}`;
      // Anyone who may comment can write the marker: only a note by the token's own user (a
      // project or group access token has its bot user; GET /user names it) is the report, so
      // someone else's note is never rewritten.
      const me = (await api.Users.showCurrentUser()).id;
      const notes = await api.MergeRequestNotes.all(t.projectId, t.mergeRequestIid);
      const mine = notes.find((n) => n.author?.id === me && typeof n.body === 'string' && n.body.includes(COMMENT_MARKER));
      if (mine) {
        await api.MergeRequestNotes.edit(t.projectId, t.mergeRequestIid, mine.id, { body: text });
        return { id: mine.id, created: false };
      }
      const note = await api.MergeRequestNotes.create(t.projectId, t.mergeRequestIid, text);
      return { id: note.id, created: true };
    },
    async setStatus(state, description, targetUrl) {
      await api.Commits.editStatus(t.projectId, t.sha, STATE[state], { name: STATUS_CONTEXT, description: description.slice(0, 255), ...(targetUrl ? { targetUrl } : {}) });
    },
  };
}
