import { Gitlab } from '@gitbeaker/rest';
import type { Notifier } from './notifier.js';
import { describe, type DeployEvent, type DeployStatus } from '../deploy/status.js';

const STATE: Record<DeployStatus, 'pending' | 'running' | 'success' | 'failed' | 'canceled'> = {
  queued: 'pending', fetching: 'running', verifying: 'running', dispatching: 'running',
  succeeded: 'success', denied: 'failed', failed: 'failed', superseded: 'canceled', error: 'failed',
};

/** GitLab commit status `cerro-torre/deploy/<env>` through Gitbeaker. */
export class GitLabNotifier implements Notifier {
  readonly name = 'gitlab';
  private readonly api: InstanceType<typeof Gitlab>;

  constructor(opts: { apiUrl: string; token?: string }) {
    this.api = new Gitlab({ host: opts.apiUrl, token: opts.token ?? '' });
  }

  async post(e: DeployEvent): Promise<void> {
    await this.api.Commits.editStatus(e.repository, e.sha, STATE[e.status], {
      name: `cerro-torre/deploy/${e.environment}`,
      description: describe(e),
      ...(e.targetUrl ? { targetUrl: e.targetUrl } : {}),
    });
  }
}
