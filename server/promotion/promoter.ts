/**
 * Promotion between environments, on the deploy server. When a deploy succeeded, one job per
 * `promotion:` rule leaving its environment is queued to run `after` later (one job right away
 * when no rule leaves it). The job: load, guard (still the live deployment of that
 * environment/app, still healthy: health.ts), sign and record the deploy VSA once (sign.ts), then
 * open or update the pull request to the rule's `to` environment (open-pr.ts). Jobs are durable
 * (the server's queue) and idempotent: the VSA is signed once per deployment, the pull request is
 * one per (environment, app) and a rerun changes nothing. Every outcome is audited.
 */
import { CtError } from '../../src/core/errors.js';
import type { ServerContext } from '../context.js';
import type { Job, JobOutcome } from '../queue/queue.js';
import { recordAudit } from '../audit.js';
import type { DeployerKey } from './deployer-key.js';
import { deploymentHealth, restartsNow } from './health.js';
import { openPromotion, type OpenPrDeps } from './open-pr.js';
import { ensureVsa } from './sign.js';

interface PromotionJob { deploymentId: string; to?: string; restarts: Record<string, number> }

interface DeploymentRow {
  id: string;
  environment: string;
  app: string;
  reference: string;
  status: string;
  hosts: string;
  image_digest: string | null;
  bundle_digest: string | null;
  created_at: number;
}

/** Transient forge/registry failures are retried by the queue; anything else is final. */
const TRANSIENT = new Set(['PROMOTE_FORGE_ERROR', 'PROMOTE_RATE_LIMITED', 'NETWORK_ERROR', 'REGISTRY_ERROR', 'REGISTRY_REFERRERS_TOO_LARGE', 'PROMOTE_CONFLICT']);

export class Promoter {
  constructor(private readonly ctx: ServerContext, private readonly deps: OpenPrDeps & { key: DeployerKey }) {}

  /** After a deploy succeeded: queue its VSA and promotions. Never fails the deploy. */
  async succeeded(d: { id: string; environment: string; app: string; hosts: string }): Promise<void> {
    try {
      const rules = (await this.deps.state()).promotions.filter((r) => r.from === d.environment);
      const restarts = await restartsNow(this.ctx.db, d);
      const now = Date.now();
      if (rules.length === 0) await this.ctx.queue.enqueue('promotion', `promotion:${d.id}:vsa`, { deploymentId: d.id, restarts } satisfies PromotionJob);
      for (const r of rules) await this.ctx.queue.enqueue('promotion', `promotion:${d.id}:${r.to}`, { deploymentId: d.id, to: r.to, restarts } satisfies PromotionJob, { runAt: now + r.afterMs });
    } catch (e) {
      this.ctx.log.error({ deployment: d.id, err: (e as Error).message }, 'could not schedule the deploy VSA and promotions');
    }
  }

  async handle(job: Job): Promise<JobOutcome> {
    const p = job.payload as PromotionJob;
    const [d] = await this.ctx.db.query<DeploymentRow>('SELECT id, environment, app, reference, status, hosts, image_digest, bundle_digest, created_at FROM deployments WHERE id = ?', [p.deploymentId]);
    if (!d) return { state: 'failed', error: 'unknown deployment' };
    const skip = async (reason: string) => {
      await recordAudit(this.ctx.db, 'promotion.skipped', d.id, { deployment: d.id, environment: d.environment, app: d.app, to: p.to ?? null, reason });
      return { state: 'done' as const, result: { skipped: reason } };
    };
    if (d.status !== 'succeeded') return skip(`the deployment is ${d.status}`);
    const [live] = await this.ctx.db.query<{ id: string }>(`SELECT id FROM deployments WHERE environment = ? AND app = ? AND status = 'succeeded' ORDER BY created_at DESC LIMIT 1`, [d.environment, d.app]);
    if (live?.id !== d.id) return skip(`deployment ${live?.id ?? '?'} replaced it in ${d.environment}`);
    const health = await deploymentHealth(this.ctx.db, d, p.restarts ?? {});
    if (!health.healthy) {
      if (health.transient && job.attempts < job.maxAttempts) return { state: 'retry', error: health.reason };
      return skip(`not healthy: ${health.reason}`);
    }
    try {
      await ensureVsa(this.ctx, { ...this.deps, policyDigest: this.deps.policies.current?.digest }, d);
    } catch (e) {
      return { state: 'retry', error: `VSA: ${(e as Error).message.slice(0, 300)}` };
    }
    if (!p.to) return { state: 'done', result: { vsa: true } };
    const rules = (await this.deps.state()).promotions;
    if (!rules.some((r) => r.from === d.environment && r.to === p.to)) return skip(`the desired state no longer promotes ${d.environment} → ${p.to}`);
    try {
      const r = await openPromotion(this.ctx, this.deps, d, p.to);
      await recordAudit(this.ctx.db, 'promotion.opened', d.id, { deployment: d.id, from: d.environment, to: p.to, app: d.app, reference: d.reference, outcome: r.outcome, url: r.change?.url ?? null, allowed: r.allow, trigger: 'after' });
      return { state: 'done', result: { outcome: r.outcome, url: r.change?.url } };
    } catch (e) {
      const code = e instanceof CtError ? e.code : 'PROMOTE_FORGE_ERROR';
      const message = (e as Error).message.slice(0, 300);
      if (TRANSIENT.has(code) && job.attempts < job.maxAttempts) return { state: 'retry', error: `${code}: ${message}` };
      await recordAudit(this.ctx.db, 'promotion.failed', d.id, { deployment: d.id, from: d.environment, to: p.to, app: d.app, code, message });
      return { state: 'failed', error: `${code}: ${message}` };
    }
  }
}
