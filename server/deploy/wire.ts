import { CtError } from '../../src/core/errors.js';
import { terminalText } from '../../src/core/terminal.js';
import { enqueueReconcile } from './reconcile-trigger.js';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { publish, type ServerContext } from '../context.js';
import type { Extension } from '../start.js';
import { loadServerKey } from '../channel/server-key.js';
import { HostHub } from '../channel/hub.js';
import { notifiersFor } from '../notifiers/index.js';
import { GitMirror } from '../gitops/git.js';
import { PolicyRepo, isGitSource } from '../gitops/policy-repo.js';
import { Reconciler } from '../gitops/reconcile.js';
import { deploymentRoutes } from '../routes/deployments.js';
import { hostRoutes } from '../routes/hosts.js';
import { verifyRoutes } from '../routes/verify.js';
import { policyRoutes } from '../routes/policies.js';
import { driftRoutes } from '../routes/drift.js';
import { containerActionRoutes } from '../routes/container-actions.js';
import { auditRoutes } from '../routes/audit.js';
import { syncRoutes } from '../routes/sync.js';
import { mcpRoutes } from '../mcp/route.js';
import { DeployPipeline, type DeploySteps } from './pipeline.js';
import { loadDeployerKey } from '../promotion/deployer-key.js';
import { VsaStore } from '../promotion/vsa-store.js';
import { Promoter } from '../promotion/promoter.js';
import { promotionRoutes } from '../routes/promotions.js';
import type { DesiredState, ReconcileOutcome } from '../gitops/reconcile.js';
import { realSteps } from './steps.js';
import { VerdictCache } from '../verify/verdict-cache.js';
import { verifyHotPath } from '../verify/hot-path.js';
import { admissionExtension } from '../admission/mount.js';
import { PolicyStore } from '../../src/policy/store.js';
import { VerificationCache } from '../../src/verify/cache.js';
import { parseTrustStore } from '../../src/trust/store.js';
import { trustMaterial } from '../../src/verify/trust-material.js';
import { loadTrustedRootFile } from '../../src/verify/sigstore/trusted-root.js';
import type { TrustMaterial } from '../../src/verify/report.js';
import { SigstoreVerifierPool } from '../../src/verify/sigstore/pool.js';

async function loadTrust(ctx: ServerContext): Promise<TrustMaterial | undefined> {
  if (!ctx.config.trustStore) return undefined;
  const store = parseTrustStore(readFileSync(ctx.config.trustStore, 'utf8'), ctx.config.trustStore);
  // Parsed and checked once, here: a root that is not one fails the start's trust, not each bundle.
  return trustMaterial(store, ctx.config.trustedRoot ? await loadTrustedRootFile(ctx.config.trustedRoot) : undefined);
}

/**
 * Contributes the deploy side to a started server: host channel, GitOps reconcile, the deploy
 * pipeline and its routes. `steps` may be replaced (tests of the pipeline's state machine).
 */
export async function deployPipeline(ctx: ServerContext, opts: { steps?: (hub: HostHub, deps: { policies: PolicyStore }) => DeploySteps; hostTimeoutMs?: number } = {}): Promise<Extension> {
  const key = await loadServerKey(ctx.config.dataDir);
  const hub = new HostHub(ctx, key.privateKey);
  // Policies from a directory, or from a git repository kept checked out at its branch head.
  const repo = isGitSource(ctx.config.policies) ? new PolicyRepo(ctx.config.policies, ctx.config.dataDir, ctx.db, ctx.config.policiesBranch ?? 'main', ctx.config.policiesAllowedSigners) : undefined;
  const policies = new PolicyStore([repo ? repo.dir : resolve(ctx.config.policies)]);
  // The commit of the policy repository the loaded set was read at (a directory has none).
  let policyCommit: string | null = null;
  // Reloads are serialised: concurrent reconciles share one sync + load at a time.
  let policyChain: Promise<void> = Promise.resolve();
  // The last load's failure code, for /readyz and the start banner (the log has the message).
  let policyError: string | undefined;
  const reloadPolicies = () => (policyChain = policyChain.then(syncAndLoad, syncAndLoad));
  const syncAndLoad = async () => {
    if (repo) {
      try {
        await repo.sync();
      } catch (e) {
        ctx.log.error({ err: (e as Error).message }, 'policy repository sync failed: keeping the previous policies');
        if (!repo.commit) return;
      }
    }
    const loaded = await policies.reload();
    policyError = loaded.ok ? undefined : loaded.error?.code ?? 'IO_ERROR';
    if (loaded.ok) policyCommit = repo?.commit ?? null;
    if (!loaded.ok) ctx.log.error({ error: loaded.error }, 'policies failed to load: keeping the previous set (none: every decision denies)');
  };
  await reloadPolicies();
  ctx.readiness.policies = () => (policies.current ? 'ok' : `policies not loaded${policyError ? ` (${policyError})` : ''}`);
  let trust: TrustMaterial | undefined;
  let trustError: string | undefined;
  try {
    trust = await loadTrust(ctx);
  } catch (e) {
    trustError = e instanceof CtError ? e.code : 'IO_ERROR';
    ctx.log.error({ err: (e as Error).message }, 'trust store failed to load: every verification fails');
  }
  ctx.readiness.trust = () => (trust ? 'ok' : `no trust store${trustError ? ` (${trustError})` : ''}`);
  const admission = ctx.config.admission?.enabled ? admissionExtension(ctx, () => trust, policies) : undefined;
  const vsas = new VsaStore(ctx.db);
  const deployerKey = await loadDeployerKey(ctx.config.dataDir, ctx.config.deployer?.keyFile);
  ctx.log.info({ keyId: deployerKey.keyId }, 'deploy VSAs are signed with this key: list it in the role deployers of the trust stores that judge them');
  const verifiedIn = (imageDigest: string, bundleDigest: string) => vsas.verifiedIn(trust, imageDigest, bundleDigest);
  // Sigstore attestations are checked on a bounded pool of threads: a burst of distinct bundles
  // does not hold this thread's event loop (requests, the host channel) for their CPU time.
  const sigstorePool = new SigstoreVerifierPool();
  const steps = opts.steps?.(hub, { policies }) ?? realSteps(ctx, hub, { trust: () => trust, policies, cache: new VerificationCache({ maxEntries: 1024 }), hostTimeoutMs: opts.hostTimeoutMs, onVerified: admission?.learn, verifiedIn, verifiers: sigstorePool.verifiers });
  const target = ctx.config.desiredState?.report ?? { provider: 'none' as const, repository: '' };
  // The desired state in force (promotion rules, the files apps are declared in); set below when configured.
  let desired: () => Promise<DesiredState> = async () => ({ apps: [], promotions: [] });
  const promoter = new Promoter(ctx, { trust: () => trust, policies, vsas, steps, state: () => desired(), key: deployerKey });
  const notifiers = notifiersFor(ctx.config, ctx.db);
  const pipeline = new DeployPipeline(ctx, steps, notifiers, target, (row) => promoter.succeeded(row));
  // A deploy is judged by the policies of the reconcile that made it: it waits for that reload.
  ctx.queue.on('deploy', async (job) => {
    await policyChain;
    return pipeline.handle(job);
  });
  ctx.queue.on('promotion', (job) => promoter.handle(job));

  let poll: NodeJS.Timeout | undefined;
  let listening: string | undefined;
  let closeMirror: (() => void) | undefined;
  const ds = ctx.config.desiredState;
  if (ds) {
    // The reconciler only reads: a repository on this machine is read in place (no fetch, no copy).
    const mirror = new GitMirror(ds.repo, join(ctx.config.dataDir, 'git'), { readInPlace: true });
    closeMirror = () => mirror.close();
    const reconciler = new Reconciler(ctx.db, mirror, {
      branch: ds.branch,
      path: ds.path,
      allowedSignersFile: ds.allowedSigners,
      enqueueDeploy: async (a, commit, info) => void (await pipeline.create(commit, a.environment, a.app, a.bundle, a.hosts, undefined, a.bundleDigest, a.ports, info, a.suspended)),
    });
    desired = () => reconciler.appliedState();
    ctx.declared = async () => ((await reconciler.appliedCommit()) ? new Set((await reconciler.appliedState()).apps.map((a) => `${a.environment}/${a.app}`)) : undefined);
    // A refused head gets one failure status (the poll finds it again every pollSeconds while it
    // stays the head): whoever pushed it sees on the commit why nothing was deployed. Claimed in
    // the database (gitops_reported): a restart does not post it again, and of several replicas
    // only the one whose upsert changed the row posts it.
    const notifier = target.provider === 'none' ? undefined : notifiers[target.provider];
    const syncLink = ctx.config.publicUrl ? { targetUrl: `${ctx.config.publicUrl}/api/v1/sync` } : {};
    const reportRefused = async (r: Extract<ReconcileOutcome, { outcome: 'refused' }>) => {
      const claimed = await ctx.db.run(
        `INSERT INTO gitops_reported (repo, commit_sha, reason, reported_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (repo) DO UPDATE SET commit_sha = excluded.commit_sha, reason = excluded.reason, reported_at = excluded.reported_at
         WHERE gitops_reported.commit_sha <> excluded.commit_sha OR gitops_reported.reason <> excluded.reason`,
        [ds.repo, r.commit, r.reason, Date.now()],
      );
      if (claimed.changes === 0) return;
      // The pushed content (a YAML key) is shown on the forge and in logs: its controls and
      // direction marks as visible escapes.
      const why = r.reason === 'NOT_DESCENDANT' ? `does not descend from the applied commit ${r.previous?.slice(0, 12)} (history rewritten?): nothing applied` : terminalText(r.message.replace(/\s+/g, ' '));
      ctx.log.warn({ commit: r.commit, reason: r.reason, code: r.code, message: why }, 'desired-state commit refused: the applied state stays in force');
      if (!notifier) return;
      await notifier.refused({ repository: target.repository, sha: r.commit, description: `refused (${r.code ?? r.reason}): ${why}`, ...syncLink }).catch(async (e: unknown) => {
        ctx.log.warn({ err: (e as Error).message, commit: r.commit }, 'status report failed');
        // Not posted: the claim goes, so the next poll (this replica's or another's) tries again;
        // kept, the commit would never get its status.
        await ctx.db.run('DELETE FROM gitops_reported WHERE repo = ? AND commit_sha = ? AND reason = ?', [ds.repo, r.commit, r.reason]).catch(() => undefined);
      });
    };
    // A commit whose refusal was posted and that is applied after all (the floor reset, the allowed
    // signers changed): a success status replaces the failure, posted by whoever deletes the claim.
    const reportApplied = async (commit: string) => {
      const claimed = await ctx.db.run('DELETE FROM gitops_reported WHERE repo = ? AND commit_sha = ?', [ds.repo, commit]);
      if (claimed.changes === 0 || !notifier) return;
      await notifier.refused({ repository: target.repository, sha: commit, applied: true, description: 'applied (refused before)', ...syncLink }).catch((e: unknown) => ctx.log.warn({ err: (e as Error).message, commit }, 'status report failed'));
    };
    ctx.queue.on('reconcile', async (job) => {
      // The policies reload while the desired state is read (each may be a git read): the deploys
      // this reconcile enqueues wait for the reload (above) before they judge anything.
      const reloading = reloadPolicies();
      const r = await reconciler.reconcile(String((job.payload as { trigger: string }).trigger));
      if (r.outcome === 'refused') await reportRefused(r);
      if (r.outcome === 'applied') await reportApplied(r.commit);
      // The dashboard's desired-state line reads GET /api/v1/sync again.
      publish(ctx, 'sync', { outcome: r.outcome === 'refused' ? `refused:${r.reason}` : r.outcome, commit: 'commit' in r ? r.commit : null });
      await reloading;
      return r.outcome === 'error' ? { state: 'retry', error: r.message } : { state: 'done', result: r };
    });
    // Every trigger (a push, a workflow run of any repository, the poll) reconciles the one
    // desired-state repository: they are coalesced together.
    const applied = () => reconciler.appliedCommit();
    ctx.onTrigger = async (t) =>
      void (await enqueueReconcile(ctx.queue, { repository: ds.repo, label: `${t.source}:${t.event}:${t.deliveryId}`, sha: t.event === 'push' ? t.sha : undefined }, { applied }));
    const every = Math.max(5, ds.pollSeconds ?? 60) * 1000;
    poll = setInterval(() => void enqueueReconcile(ctx.queue, { repository: ds.repo, label: 'poll' }).catch(() => undefined), every);
    poll.unref();
  }
  // Stored /api/v1/verify answers, valid while the trust, the policies and the VSAs are those they were computed with.
  const mcp = mcpRoutes(ctx, { apiBase: () => listening });
  const verdicts = new VerdictCache(() => ({ trust, policies: policies.current, vsas: vsas.version }));
  const cachedVerify = ctx.metrics.verifySeconds.labels('yes');
  const storedAnswers = ctx.metrics.verifyAnswers.labels('stored');
  return {
    fastPath: verifyHotPath(ctx.db, verdicts, () => {
      cachedVerify.observe(0);
      storedAnswers.inc();
    }),
    // The hot route first: express walks every router mounted before the one that answers.
    routers: [verifyRoutes(ctx, steps, verdicts), ...(admission ? [admission.router] : []), mcp.router, deploymentRoutes(ctx, pipeline), promotionRoutes(ctx, { trust: () => trust, policies, vsas, steps, state: () => desired(), key: deployerKey }), hostRoutes(ctx, hub, key.publicKeyB64), policyRoutes(ctx, policies, () => ({ source: repo ? ('git' as const) : ('directory' as const), commit: policyCommit })), driftRoutes(ctx), auditRoutes(ctx), syncRoutes(ctx), containerActionRoutes(ctx, hub)],
    onListen: (server) => {
      hub.attach(server);
      // MCP tools call the API here, at the address this server listens on (loopback when it
      // listens on every interface), never at an address taken from a request.
      const a = server.address() as AddressInfo;
      const host = a.address === '0.0.0.0' || a.address === '::' ? '127.0.0.1' : a.address;
      listening = `http://${host.includes(':') ? `[${host}]` : host}:${a.port}`;
    },
    // The channels, once the deploys in flight drained and before the server waits for its
    // connections (start.ts): hosts reconnect to the next one.
    closing: () => hub.close(),
    close: async () => {
      clearInterval(poll);
      closeMirror?.();
      admission?.close();
      repo?.close();
      hub.close();
      // Before the database closes: the counts of refused MCP calls not written yet.
      await mcp.close();
      await sigstorePool.close();
    },
  };
}
