/**
 * One promotion from a typed request (what `ct promote`, the promote and build actions, the
 * GitLab component, the deploy server and the MCP tool all call): build the forge client, fetch
 * the bundle that runs now (when a registry is reachable) so that the evidence can be compared
 * with it, and run `promote`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CtError } from '../core/errors.js';
import type { FetchOptions } from '../oci/fetch.js';
import type { PolicySet } from '../policy/policy-set.js';
import type { HostFacts } from '../policy/types.js';
import type { TrustMaterial } from '../verify/report.js';
import { promotionEvidence } from './evidence.js';
import type { Forge } from './forge.js';
import { githubAppToken, githubForge } from './github.js';
import { gitlabForge } from './gitlab.js';
import { promote, type PromoteInput, type PromoteResult } from './promote.js';
import type { RetryOptions } from './rate-limit.js';

/** `allowedAddresses`: non-public addresses the API may resolve to; every forge URL passes the URL guard. */
export type ForgeTarget =
  | { provider: 'github'; apiUrl?: string; allowedAddresses?: string[]; repository: string; token: string }
  | { provider: 'github'; apiUrl?: string; allowedAddresses?: string[]; repository: string; app: { appId: string; privateKey: string; installationId: number } }
  | { provider: 'gitlab'; apiUrl?: string; allowedAddresses?: string[]; project: string; token: string };

export interface PromotionRequest extends PromoteInput {
  forge: ForgeTarget;
  /** The candidate .ctp (the bundle the pin names), verified here for the evidence. */
  candidate: string;
  trust: TrustMaterial;
  policies: PolicySet;
  host?: Partial<HostFacts>;
  /** How to get the bundle that runs now: a local .ctp, or fetched from its registry. */
  current?: { path: string } | { fetch: FetchOptions };
  retry?: RetryOptions;
  /** Environments where verified deploy VSAs show the candidate ran (the deploy server knows them). */
  verifiedIn?: string[];
}

export async function forgeFor(t: ForgeTarget, retry: RetryOptions = {}): Promise<Forge> {
  const net = { apiUrl: t.apiUrl, allowedAddresses: t.allowedAddresses };
  if (t.provider === 'gitlab') return gitlabForge({ ...net, token: t.token, project: t.project, ...retry });
  if ('app' in t) {
    const { token } = await githubAppToken({ ...net, ...t.app, ...retry });
    return githubForge({ ...net, token, repository: t.repository, ...retry });
  }
  return githubForge({ ...net, token: t.token, repository: t.repository, ...retry });
}

export async function runPromotion(req: PromotionRequest, forge?: Forge): Promise<PromoteResult> {
  const f = forge ?? (await forgeFor(req.forge, req.retry));
  const work = await mkdtemp(join(tmpdir(), 'ct-promote-'));
  try {
    return await promote(req, f, async (previous) => {
      let current: { path: string; reference: string } | undefined;
      let missing: string | undefined;
      if (!previous) missing = 'the app runs nowhere yet';
      else if (req.current && 'path' in req.current) current = { path: req.current.path, reference: previous.bundle };
      else if (req.current && 'fetch' in req.current) {
        const { fetchCtp } = await import('../oci/fetch.js');
        try {
          const r = await fetchCtp(previous.bundle, join(work, 'current.ctp'), { ...req.current.fetch, ...(previous.bundleDigest ? { bundleDigest: previous.bundleDigest } : {}) });
          current = { path: r.path, reference: previous.bundle };
        } catch (e) {
          missing = `the running bundle could not be fetched (${e instanceof CtError ? e.code : 'ERROR'})`;
        }
      } else missing = 'the running bundle was not fetched (no registry access given)';
      return promotionEvidence({ candidate: req.candidate, trust: req.trust, policies: req.policies, environment: req.environment, ...(req.host ? { host: req.host } : {}), ...(req.verifiedIn ? { verifiedIn: req.verifiedIn } : {}), ...(current ? { current } : { currentMissing: missing }) });
    });
  } finally {
    await rm(work, { recursive: true, force: true });
    if (!forge) await f.close?.();
  }
}
