import { CtError } from '../core/errors.js';
import { seccompGrant } from '../policy/seccomp-grant.js';
import type { PolicySet } from '../policy/policy-set.js';
import type { BundleFacts, Decision } from '../policy/types.js';
import { assertSeccompProfile, confines, DOCKER_DEFAULT_CAPS, type OciSeccomp } from '../profiles/seccomp/index.js';

/**
 * Why a bundle's own seccomp profile may not be the one its pods run under, or undefined. The
 * admission webhooks make a pod use the bundle's profile (a Localhost profile the Security
 * Profiles Operator installs) instead of the runtime's default, so, as on a host
 * (host/enforce/oci-config.ts), that profile may only narrow RuntimeDefault: a bundle shipping
 * `{"defaultAction":"SCMP_ACT_ALLOW"}` would otherwise run its pods with seccomp off. The baseline
 * is RuntimeDefault for the runtime's default capabilities and the manifest's, on this node's
 * architecture and kernel; extras only from policies that require seccomp. Pods keep only the
 * manifest's capabilities (profiles.ts, desiredCapabilities): the few syscalls the wider baseline
 * lets through for the others (chroot, for SYS_CHROOT) still need a capability the pod lacks.
 */
export function bundleSeccompProblem(facts: BundleFacts, set: PolicySet, decision: Decision): string | undefined {
  const raw = facts.security?.seccomp;
  if (raw === undefined) return undefined;
  // Only whether it confines: whether the pod's runtime can start under it is the node's to say
  // (runc's start-up syscalls are a host's concern, host/enforce).
  let profile: OciSeccomp;
  try {
    assertSeccompProfile(raw, 'security/seccomp.json');
    profile = raw;
  } catch (e) {
    return e instanceof CtError ? e.message : String(e);
  }
  const asked = (facts.runtime?.capabilities ?? []).map((c) => (c.startsWith('CAP_') ? c : `CAP_${c}`));
  const grant = seccompGrant(set, decision);
  const report = confines(profile, { extras: grant.required ? grant.extras : [], capabilities: [...new Set([...DOCKER_DEFAULT_CAPS, ...asked])] });
  if (report.confines) return undefined;
  return `security/seccomp.json does not confine: a bundle's profile may only narrow RuntimeDefault (${report.problems.join(', ')}${report.outside.length ? `: ${report.outside.slice(0, 20).join(', ')}` : ''})`;
}
