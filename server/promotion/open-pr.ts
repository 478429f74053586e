/**
 * The promotion pull / merge request the deploy server opens: the bundle a deployment runs in one
 * environment, pinned for the same app in another, through the same library call as `ct promote`
 * and the CI actions (runPromotion), on the desired-state repository the server reports to, with
 * the forge settings of its configuration (every forge URL through the URL guard). The evidence
 * carries `verifiedIn` from the VSAs this server verified, and the target environment's host facts.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CtError } from '../../src/core/errors.js';
import type { PolicyStore } from '../../src/policy/store.js';
import { runPromotion, type ForgeTarget } from '../../src/promote/run.js';
import type { PromoteResult } from '../../src/promote/promote.js';
import { policyHostFacts } from '../../src/protocol/policy-facts.js';
import type { HostFacts } from '../../src/protocol/messages.js';
import type { HostFacts as PolicyHostFacts } from '../../src/policy/types.js';
import type { TrustMaterial } from '../../src/verify/report.js';
import type { ServerContext } from '../context.js';
import type { DeploySteps } from '../deploy/pipeline.js';
import type { DesiredState } from '../gitops/reconcile.js';
import type { SignableDeployment } from './sign.js';
import type { VsaStore } from './vsa-store.js';

/** A deployment is promoted with the VSA signed for it: the same row shape `ensureVsa` signs. */
export type PromotableDeployment = SignableDeployment;

export interface OpenPrDeps {
  trust: () => TrustMaterial | undefined;
  policies: PolicyStore;
  vsas: VsaStore;
  steps: DeploySteps;
  state: () => Promise<DesiredState>;
}

/** The forge the server promotes on: where it reports deploy statuses, with that forge's token. */
export function serverForge(ctx: ServerContext): ForgeTarget | undefined {
  const report = ctx.config.desiredState?.report;
  if (report?.provider === 'github' && ctx.config.github?.token) {
    return { provider: 'github', repository: report.repository, token: ctx.config.github.token, apiUrl: ctx.config.github.apiUrl, allowedAddresses: ctx.config.github.allowedAddresses ?? [] };
  }
  if (report?.provider === 'gitlab' && ctx.config.gitlab?.token) {
    return { provider: 'gitlab', project: report.repository, token: ctx.config.gitlab.token, apiUrl: ctx.config.gitlab.apiUrl, allowedAddresses: ctx.config.gitlab.allowedAddresses ?? [] };
  }
  return undefined;
}

async function targetFacts(ctx: ServerContext, environment: string): Promise<Partial<PolicyHostFacts> | undefined> {
  const rows = await ctx.db.query<{ labels: string; facts: string }>('SELECT labels, facts FROM hosts ORDER BY name');
  for (const r of rows) {
    const labels = JSON.parse(r.labels) as Record<string, string>;
    if ((labels.env ?? labels.environment) === environment) return policyHostFacts(JSON.parse(r.facts) as HostFacts, environment);
  }
  return undefined;
}

export async function openPromotion(ctx: ServerContext, deps: OpenPrDeps, d: PromotableDeployment, to: string): Promise<PromoteResult & { file: string }> {
  const forge = serverForge(ctx);
  if (!forge) throw new CtError('USAGE', 'no forge to promote on: set desiredState.report and the token of its forge (github.token or gitlab.token)', {});
  const trust = deps.trust();
  const policies = deps.policies.current;
  if (!trust || !policies) throw new CtError('NO_POLICY', 'the trust store or the policies are not loaded: nothing can be judged for the evidence', {});
  if (!d.image_digest || !d.bundle_digest) throw new CtError('VSA_INVALID', `deployment ${d.id} has no image or bundle digest recorded`, {});
  const state = await deps.state();
  const target = state.apps.find((a) => a.environment === to && a.app === d.app);
  if (!target?.file) throw new CtError('PROMOTE_APP_MISSING', `${d.app} is not declared in environment ${to} of the desired state (promotion never adds apps)`, { environment: to, app: d.app });
  // The .ctp the deploy verified; fetched and verified again when this replica does not hold it.
  let candidate = join(ctx.config.dataDir, 'bundles', `${d.bundle_digest.slice(7)}.ctp`);
  if (!existsSync(candidate)) {
    const v = await deps.steps.fetchAndVerify(d.reference, d.environment, d.bundle_digest);
    if (!v.ok) throw new CtError(v.code as never, v.message, {});
    candidate = v.path;
  }
  const { environments } = await deps.vsas.verifiedIn(trust, d.image_digest, d.bundle_digest);
  const host = await targetFacts(ctx, to);
  const registry = target.bundle.split('/')[0];
  const result = await runPromotion({
    forge, environment: to, app: d.app, bundle: d.reference, bundleDigest: d.bundle_digest, file: target.file, candidate, trust, policies, verifiedIn: environments,
    ...(host ? { host } : {}),
    current: { fetch: { allowedRegistries: ctx.config.registries.allow, allowedAddresses: ctx.config.registries.allowedAddresses, plainHttp: ctx.config.registries.insecure?.includes(registry) ?? false } },
    ...(ctx.config.publicUrl ? { targetUrl: `${ctx.config.publicUrl}/api/v1/deployments/${d.id}` } : {}),
  });
  return { ...result, file: target.file };
}
