/**
 * A deploy's status is a closed set. Final outcomes are never retried: `denied` (verification
 * or policy said no), `failed` (it ran and the hosts reported failure) and `superseded` (a newer
 * deployment of the same environment/app exists: an older one is never dispatched after it). `error` means it
 * could not run (registry down, no host) and is retried until attempts run out.
 */
import type { DeployStatus } from '../../src/protocol/deploy-status.js';

export type { DeployStatus };

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
  return statusDescription(`${e.app}: ${e.status}${e.reason ? ` (${e.reason})` : ''} — ${e.description}`);
}

/** Any commit-status description: at most 140 characters (never half a surrogate pair). */
export function statusDescription(text: string): string {
  if (text.length <= 140) return text;
  const keep = /[\uD800-\uDBFF]/.test(text[138]) ? 138 : 139;
  return `${text.slice(0, keep)}…`;
}

/** The commit-status context of the desired-state commits the reconciler refused. */
export const DESIRED_STATE_CONTEXT = 'cerro-torre/desired-state';
