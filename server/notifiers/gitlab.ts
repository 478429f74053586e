import { Gitlab } from '@gitbeaker/rest';
import { forgeHttp, guardRefusal, type ForgeHttp } from '../../src/promote/forge-http.js';
import type { Notifier, RefusedCommitEvent } from './notifier.js';
import { DESIRED_STATE_CONTEXT, describe, statusDescription, type DeployEvent, type DeployStatus } from '../deploy/status.js';

const STATE: Record<DeployStatus, 'pending' | 'running' | 'success' | 'failed' | 'canceled'> = {
  queued: 'pending', fetching: 'running', verifying: 'running', dispatching: 'running',
  succeeded: 'success', denied: 'failed', failed: 'failed', superseded: 'canceled', error: 'failed',
};

/** GitLab commit status `cerro-torre/deploy/<env>` through Gitbeaker. */
export class GitLabNotifier implements Notifier {
  readonly name = 'gitlab';
  private readonly api: InstanceType<typeof Gitlab>;
  private readonly http: ForgeHttp;

  /** Gitbeaker sends every request through the guarded agent (the project's one URL guard). */
  constructor(opts: { apiUrl: string; token?: string; allowedAddresses?: string[] }) {
    this.http = forgeHttp({ allowedAddresses: opts.allowedAddresses, code: 'NOTIFY_URL_NOT_ALLOWED' });
    this.api = new Gitlab({ host: opts.apiUrl, token: opts.token ?? '', agent: this.http.agent as never });
  }

  async post(e: DeployEvent): Promise<void> {
    try {
      await this.api.Commits.editStatus(e.repository, e.sha, STATE[e.status], {
        name: `cerro-torre/deploy/${e.environment}`,
        description: describe(e),
        ...(e.targetUrl ? { targetUrl: e.targetUrl } : {}),
      });
    } catch (err) {
      throw guardRefusal(err) ?? this.http.takeRefusal() ?? err;
    }
  }

  /** A refused desired-state commit: a `failed` status on it, with the reason (`success` once it is applied after all). */
  async refused(e: RefusedCommitEvent): Promise<void> {
    try {
      await this.api.Commits.editStatus(e.repository, e.sha, e.applied ? 'success' : 'failed', {
        name: DESIRED_STATE_CONTEXT,
        description: statusDescription(e.description),
        ...(e.targetUrl ? { targetUrl: e.targetUrl } : {}),
      });
    } catch (err) {
      throw guardRefusal(err) ?? this.http.takeRefusal() ?? err;
    }
  }

  close(): Promise<void> {
    return this.http.close();
  }
}
