import type { DeployEvent } from '../deploy/status.js';

/** A notifier has one method; one file per provider; registered in `notifiers/index.ts`. */
export interface Notifier {
  readonly name: string;
  post(event: DeployEvent): Promise<void>;
}

/** Small persistent key/value per deployment, so a restarted server reuses what it created. */
export interface NotifierState {
  get(deploymentId: string, key: string): Promise<string | undefined>;
  set(deploymentId: string, key: string, value: string): Promise<void>;
}
