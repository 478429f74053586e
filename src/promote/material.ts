/** Trust material and policies for a promotion, from files (CLI, actions, CI components). */
import { compileTexts, readPolicySources } from '../policy/load.js';
import { policyInvalid } from '../policy/issues.js';
import type { PolicySet } from '../policy/policy-set.js';
import { loadTrustStore } from '../trust/store.js';
import { trustMaterial } from '../verify/trust-material.js';
import { loadTrustedRootFile } from '../verify/sigstore/trusted-root.js';
import type { TrustMaterial } from '../verify/report.js';

export async function loadPromotionMaterial(o: { trustStore: string; trustedRoot?: string; policies: string[] }): Promise<{ trust: TrustMaterial; policies: PolicySet }> {
  const store = await loadTrustStore(o.trustStore);
  const root = o.trustedRoot ? await loadTrustedRootFile(o.trustedRoot) : undefined;
  const loaded = compileTexts(await readPolicySources(o.policies));
  if (!loaded.set) throw policyInvalid(loaded.issues);
  return { trust: trustMaterial(store, root), policies: loaded.set };
}
