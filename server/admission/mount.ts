/**
 * The admission webhooks as a path of the deploy server (`admission.enabled` in its config):
 * `/admission/mutate/<environment>`, `/admission/validate/<environment>`. They judge with the
 * server's own trust store, policies and registry allow-list, and every bundle the server
 * verifies for a deploy is handed to their cache (`learn`), so admitting what GitOps deployed
 * needs no fetch. TLS is the deploy server's front's (the API server calls HTTPS only); with
 * `admission.tokenFile`, callers must present one of its bearer tokens (caller-auth.ts).
 */
import { Router } from 'express';
import type { PolicyStore } from '../../src/policy/store.js';
import type { TrustMaterial } from '../../src/verify/report.js';
import { AdmissionJudge, APPARMOR_NODES, type VerifiedImage } from '../../src/k8s/verdicts.js';
import { parseExemptions } from '../../src/k8s/exempt.js';
import type { ServerContext } from '../context.js';
import { admissionHandler } from './handler.js';
import { AdmissionMetrics } from './metrics.js';
import { bearerTokenCheck, refuseCaller } from './caller-auth.js';

export function admissionExtension(ctx: ServerContext, trust: () => TrustMaterial | undefined, policies: PolicyStore): { router: Router; learn: (v: VerifiedImage) => void; judge: AdmissionJudge; close(): void } {
  const cfg = ctx.config.admission ?? {};
  // Read before anything is served: a token file that does not load stops the server (fail closed).
  const callers = cfg.tokenFile ? bearerTokenCheck(cfg.tokenFile, ctx.log) : undefined;
  const judge = new AdmissionJudge({
    trust,
    policies: () => policies.current,
    registry: { allowedRegistries: ctx.config.registries.allow, allowedAddresses: ctx.config.registries.allowedAddresses, insecure: ctx.config.registries.insecure ?? [] },
    ...(cfg.ttlSeconds ? { ttlMs: cfg.ttlSeconds * 1000 } : {}),
    ...(cfg.nodesAppArmor === true ? { nodes: APPARMOR_NODES } : {}),
  });
  // In the server's registry: its /metrics shows them.
  const metrics = new AdmissionMetrics(ctx.metrics.registry, cfg.environments ?? undefined);
  const handler = admissionHandler({
    judge,
    log: ctx.log,
    ...(cfg.environments ? { environments: cfg.environments } : {}),
    ...(cfg.auditEnvironments?.length ? { auditEnvironments: cfg.auditEnvironments } : {}),
    exempt: parseExemptions(cfg.exemptImages ?? [], 'admission.exemptImages'),
    metrics,
    callersAuthenticated: Boolean(callers),
    ...(cfg.timeoutMs ? { timeoutMs: cfg.timeoutMs } : {}),
  });
  const router = Router();
  // Mounted before any body parser: the handler reads and bounds the body itself, after the
  // caller is known (no body of an unknown caller is read or parsed).
  router.use('/admission', (req, res) => {
    if (callers && !callers.allows(req)) return refuseCaller(req, res, 'admission.tokenFile', metrics);
    handler(req, res);
  });
  return {
    router,
    judge,
    close: () => callers?.close(),
    learn: (v) => {
      try {
        judge.learn(v);
      } catch (e) {
        ctx.log.warn({ err: (e as Error).message }, 'admission cache: verified bundle not learnt');
      }
    },
  };
}
