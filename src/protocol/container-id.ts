import { createHash } from 'node:crypto';

/**
 * The runc container id of an environment's app on a host. Environment and app names may both
 * contain dashes, so `ct-<env>-<app>` alone is ambiguous (env `a-b` app `c` vs env `a` app `b-c`)
 * and may exceed runc's 63 characters once joined: a hash of the pair keeps ids distinct, the
 * readable prefix keeps them recognisable. Shared by the host (which names containers) and
 * whoever needs to find one (server drift, logs, tests).
 */
export function containerIdFor(environment: string, app: string): string {
  const hash = createHash('sha256').update(`${environment}\n${app}`).digest('hex').slice(0, 10);
  return `ct-${`${environment}-${app}`.slice(0, 48)}-${hash}`;
}

/** The ids containerIdFor makes: a host's agent apps (their root filesystems carry a generation). */
export const AGENT_CONTAINER_ID = /^ct-.+-[0-9a-f]{10}$/;
