import type { DeployEvent } from '../deploy/status.js';

/**
 * A desired-state commit the reconciler refused (its YAML does not parse, it does not descend from
 * the applied commit, it is not signed): a `failure` commit status `cerro-torre/desired-state` on it.
 */
export interface RefusedCommitEvent {
  repository: string;
  sha: string;
  /** `refused:INVALID_STATE` etc. and the reason, at most 140 characters once posted. */
  description: string;
  /** The commit was applied after its refusal was posted (the floor reset, the signers changed): a `success` status replaces the failure. */
  applied?: boolean;
  targetUrl?: string;
}

/** A notifier posts deploy statuses and refused desired-state commits; one file per provider; registered in `notifiers/index.ts`. */
export interface Notifier {
  readonly name: string;
  post(event: DeployEvent): Promise<void>;
  refused(event: RefusedCommitEvent): Promise<void>;
}

/** Small persistent key/value per deployment, so a restarted server reuses what it created. */
export interface NotifierState {
  get(deploymentId: string, key: string): Promise<string | undefined>;
  set(deploymentId: string, key: string, value: string): Promise<void>;
}
