import type { PolicySet } from './policy-set.js';
import type { Decision } from './types.js';
import { normaliseCapability } from './compile.js';

/**
 * The capabilities the policies that allowed a bundle let it run with: only those every applying
 * policy with a `runtime.capabilities` rule allows, and none when no applying policy has one (the
 * quickstart policy has none: an app asking for CAP_SYS_ADMIN gets no capability). One rule for a
 * host (host/agent/grants.ts, which intersects the manifest's ask with it in the OCI config) and
 * for Kubernetes admission (src/k8s/verdicts.ts), so that a pod is granted what a host grants.
 * In the policies' spelling (`CAP_NET_BIND_SERVICE`, normaliseCapability), sorted.
 */
export function capabilitiesAllowed(set: PolicySet, decision: Decision): string[] {
  let caps: Set<string> | undefined;
  for (const name of decision.policies) {
    const r = set.get(name)?.runtime?.capabilities;
    if (r) caps = caps ? new Set([...caps].filter((c) => r.allowed.has(c))) : new Set(r.allowed);
  }
  return [...(caps ?? [])].sort();
}

/**
 * What a bundle runs with: the manifest's capabilities that the policies allow (ask ∩ allow, as
 * host/enforce/oci-config.ts builds the OCI config), both sides compared in the policies'
 * spelling. Never `CAP_ALL`: it is no capability a runtime knows, and Kubernetes reads `ALL` in
 * `capabilities.add` as every capability.
 */
export function grantedCapabilities(ask: readonly unknown[] | undefined, allowed: readonly string[]): string[] {
  const allow = new Set(allowed.map(normaliseCapability));
  const asked = (ask ?? []).filter((c): c is string => typeof c === 'string').map(normaliseCapability);
  return [...new Set(asked)].filter((c) => c !== 'CAP_ALL' && allow.has(c)).sort();
}
