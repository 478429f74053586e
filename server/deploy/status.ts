/**
 * A deploy's status is a closed set. Final outcomes are never retried: `denied` (verification
 * or policy said no), `failed` (it ran and the hosts reported failure) and `superseded` (a newer
 * deployment of the same environment/app exists: an older one is never dispatched after it). `error` means it
 * could not run (registry down, no host) and is retried until attempts run out.
 */
export type DeployStatus = 'queued' | 'fetching' | 'verifying' | 'dispatching' | 'succeeded' | 'denied' | 'failed' | 'superseded' | 'error';

export const FINAL: ReadonlySet<DeployStatus> = new Set(['succeeded', 'denied', 'failed', 'superseded']);

export interface DeployEvent {
  deploymentId: string;
  /** Where the desired state lives: `owner/repo` on GitHub, project path on GitLab. */
  repository: string;
  provider: 'github' | 'gitlab' | 'none';
  sha: string;
  environment: string;
  app: string;
  bundle: string;
  status: DeployStatus;
  /** Short reason code (e.g. INVALID_SIGNATURE) and a human description. */
  reason?: string;
  description: string;
  targetUrl?: string;
}

/** Commit-status descriptions are limited to 140 characters by GitHub. */
export function describe(e: Pick<DeployEvent, 'status' | 'reason' | 'app' | 'description'>): string {
  const text = `${e.app}: ${e.status}${e.reason ? ` (${e.reason})` : ''} — ${e.description}`;
  return text.length <= 140 ? text : `${text.slice(0, 139)}…`;
}
