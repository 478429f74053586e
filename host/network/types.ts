import type { PublishedPort } from '../../src/protocol/ports.js';
import type { Egress, PublishRule } from '../../src/policy/types.js';

export type { Egress, PublishRule, PublishedPort };

/**
 * What the policies that allowed a bundle grant its network on the host (RuntimeGrants.network).
 * Permissions intersect, as for capabilities: a port is published only when every applying policy
 * with a `runtime.network` section has a rule allowing it (none with one: nothing is published),
 * and egress is the narrowest any of them names (default `none`).
 */
export interface NetworkGrants {
  publish: readonly (readonly PublishRule[])[];
  egress: Egress;
}
