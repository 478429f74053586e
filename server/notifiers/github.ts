import { Octokit } from '@octokit/rest';
import { forgeHttp, guardRefusal, type ForgeHttp } from '../../src/promote/forge-http.js';
import type { Notifier, NotifierState, RefusedCommitEvent } from './notifier.js';
import { DESIRED_STATE_CONTEXT, describe, statusDescription, type DeployEvent, type DeployStatus } from '../deploy/status.js';

const COMMIT_STATE: Record<DeployStatus, 'pending' | 'success' | 'failure' | 'error'> = {
  queued: 'pending', fetching: 'pending', verifying: 'pending', dispatching: 'pending',
  succeeded: 'success', denied: 'failure', failed: 'failure', superseded: 'failure', error: 'error',
};
const DEPLOYMENT_STATE: Record<DeployStatus, 'queued' | 'in_progress' | 'success' | 'failure' | 'error' | 'inactive'> = {
  queued: 'queued', fetching: 'in_progress', verifying: 'in_progress', dispatching: 'in_progress',
  succeeded: 'success', denied: 'failure', failed: 'failure', superseded: 'inactive', error: 'error',
};

/** Commit status `cerro-torre/deploy/<env>` plus the Deployments API (deployment + deployment_status). */
export class GitHubNotifier implements Notifier {
  readonly name = 'github';
  private readonly octokit: Octokit;
  private readonly http: ForgeHttp;

  /** Every request goes through the project's one URL guard (src/promote/forge-http.ts, src/oci/guard.ts). */
  constructor(opts: { apiUrl: string; token?: string; allowedAddresses?: string[] }, private readonly state: NotifierState) {
    this.http = forgeHttp({ allowedAddresses: opts.allowedAddresses, code: 'NOTIFY_URL_NOT_ALLOWED' });
    this.octokit = new Octokit({ baseUrl: opts.apiUrl, auth: opts.token, request: { retries: 0, fetch: this.http.fetch }, log: { debug() {}, info() {}, warn() {}, error() {} } });
  }

  async post(e: DeployEvent): Promise<void> {
    try {
      await this.send(e);
    } catch (err) {
      // Octokit wraps the guard's refusal: surface it with its own code.
      throw guardRefusal(err) ?? this.http.takeRefusal() ?? err;
    }
  }

  /** A refused desired-state commit: a `failure` status on it, with the reason (`success` once it is applied after all). */
  async refused(e: RefusedCommitEvent): Promise<void> {
    const [owner, repo] = e.repository.split('/');
    try {
      await this.octokit.rest.repos.createCommitStatus({
        owner, repo, sha: e.sha, state: e.applied ? 'success' : 'failure', context: DESIRED_STATE_CONTEXT, description: statusDescription(e.description),
        ...(e.targetUrl ? { target_url: e.targetUrl } : {}),
      });
    } catch (err) {
      throw guardRefusal(err) ?? this.http.takeRefusal() ?? err;
    }
  }

  close(): Promise<void> {
    return this.http.close();
  }

  private async send(e: DeployEvent): Promise<void> {
    const [owner, repo] = e.repository.split('/');
    const description = describe(e);
    await this.octokit.rest.repos.createCommitStatus({
      owner, repo, sha: e.sha, state: COMMIT_STATE[e.status], context: `cerro-torre/deploy/${e.environment}`, description,
      ...(e.targetUrl ? { target_url: e.targetUrl } : {}),
    });
    const id = await this.deploymentFor(e, owner, repo);
    await this.octokit.rest.repos.createDeploymentStatus({
      owner, repo, deployment_id: id, state: DEPLOYMENT_STATE[e.status], description, environment: e.environment,
      ...(e.targetUrl ? { log_url: e.targetUrl } : {}),
    });
  }

  private async deploymentFor(e: DeployEvent, owner: string, repo: string): Promise<number> {
    const known = await this.state.get(e.deploymentId, 'github.deployment');
    if (known) return Number(known);
    // A previous life of this server may have created it and died before saving its id.
    const existing = await this.octokit.rest.repos.listDeployments({ owner, repo, sha: e.sha, environment: e.environment, per_page: 100 });
    const mine = existing.data.find((d) => (d.payload as { cerroTorreDeployment?: string } | null)?.cerroTorreDeployment === e.deploymentId);
    if (mine) {
      await this.state.set(e.deploymentId, 'github.deployment', String(mine.id));
      return mine.id;
    }
    const res = await this.octokit.rest.repos.createDeployment({
      owner, repo, ref: e.sha, environment: e.environment, auto_merge: false, required_contexts: [],
      payload: { app: e.app, bundle: e.bundle, cerroTorreDeployment: e.deploymentId }, description: `${e.app} ${e.bundle}`.slice(0, 140),
    });
    const id = (res.data as { id: number }).id;
    await this.state.set(e.deploymentId, 'github.deployment', String(id));
    return id;
  }
}
