/**
 * The one rule hosts (host/agent/grants.ts, host/enforce/oci-config.ts) and Kubernetes admission
 * (src/k8s/verdicts.ts) grant capabilities by: the manifest's that every applying policy with a
 * capabilities rule allows; none without such a rule; never CAP_ALL.
 */
import { describe, expect, it } from '@jest/globals';
import { capabilitiesAllowed, grantedCapabilities } from '../../src/policy/capability-grant.js';
import type { PolicySet } from '../../src/policy/policy-set.js';
import type { Decision } from '../../src/policy/types.js';

const setOf = (rules: Record<string, string[] | undefined>): PolicySet =>
  ({ get: (n: string) => (n in rules ? { runtime: rules[n] ? { capabilities: { allowed: new Set(rules[n]) } } : { seccomp: {} } } : undefined) }) as unknown as PolicySet;
const decided = (...policies: string[]) => ({ policies }) as unknown as Decision;

describe('capabilities granted', () => {
  it('no applying policy with a capabilities rule allows none; several allow what all of them allow', () => {
    expect(capabilitiesAllowed(setOf({ quickstart: undefined }), decided('quickstart'))).toEqual([]);
    expect(capabilitiesAllowed(setOf({}), decided())).toEqual([]);
    const set = setOf({ a: ['CAP_NET_BIND_SERVICE', 'CAP_SYS_ADMIN'], b: ['CAP_NET_BIND_SERVICE'], c: undefined });
    expect(capabilitiesAllowed(set, decided('a', 'c'))).toEqual(['CAP_NET_BIND_SERVICE', 'CAP_SYS_ADMIN']);
    expect(capabilitiesAllowed(set, decided('a', 'b', 'c'))).toEqual(['CAP_NET_BIND_SERVICE']);
  });

  it('ask ∩ allow in the policies\' spelling, never CAP_ALL even where allowed', () => {
    expect(grantedCapabilities(['CAP_NET_BIND_SERVICE', 'CAP_SYS_ADMIN', 'CAP_SYS_MODULE'], [])).toEqual([]);
    expect(grantedCapabilities(['CAP_NET_BIND_SERVICE', 'CAP_SYS_ADMIN'], ['CAP_NET_BIND_SERVICE'])).toEqual(['CAP_NET_BIND_SERVICE']);
    expect(grantedCapabilities(['net_bind_service', 7, 'CAP_NET_BIND_SERVICE'], ['NET_BIND_SERVICE'])).toEqual(['CAP_NET_BIND_SERVICE']);
    expect(grantedCapabilities(['CAP_ALL', 'CAP_CHOWN'], ['CAP_ALL', 'CAP_CHOWN'])).toEqual(['CAP_CHOWN']);
    expect(grantedCapabilities(undefined, ['CAP_CHOWN'])).toEqual([]);
  });
});
