import { mkdirSync } from 'node:fs';
import type { PublishedPort } from '../../src/protocol/ports.js';
import { rename, rm, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { CtError } from '../../src/core/errors.js';
import { tempPathFor } from '../../src/core/fs.js';
import { fetchCtp, SERVER_FETCH_DEADLINE } from '../../src/oci/fetch.js';
import { verifyCtpArchive } from '../../src/verify/ctp/index.js';
import { openCtpToVerify } from '../../src/bundle/read.js';
import { trustKeyOf, type AttestationVerifier, type TrustMaterial } from '../../src/verify/report.js';
import { withPolicyKeyless } from '../../src/policy/keyless-trust.js';
import { NOT_VERIFIED_CODES } from '../../src/verify/batch/pool.js';
import type { VerificationCache } from '../../src/verify/cache.js';
import type { Evidence, Finding } from '../../src/verify/evidence.js';
import { bundleFactsFromArchive } from '../../src/policy/bundle-facts.js';
import { evaluate } from '../../src/policy/evaluate.js';
import type { PolicyStore } from '../../src/policy/store.js';
import { PolicySet } from '../../src/policy/policy-set.js';
import type { BundleFacts } from '../../src/policy/types.js';
import { policyHostFacts } from '../../src/protocol/policy-facts.js';
import type { ServerContext } from '../context.js';
import type { HostHub } from '../channel/hub.js';
import type { DeployRun, DeploySteps, PolicyVerdict, VerifiedBundle } from './pipeline.js';
import type { VerifiedImage } from '../../src/k8s/verdicts.js';

/** Registry failures that may pass on their own (retry) versus answers that will not change. */
const TRANSIENT = new Set(['NETWORK_ERROR', 'REGISTRY_ERROR', 'REGISTRY_REFERRERS_TOO_LARGE', 'IO_ERROR']);

export interface StepDeps {
  trust: () => TrustMaterial | undefined;
  policies: PolicyStore;
  cache: VerificationCache;
  hostTimeoutMs?: number;
  /** Told of every bundle that verified: the admission webhooks pre-compute their verdicts from it. */
  onVerified?: (v: VerifiedImage) => void;
  /** Environments where this exact bundle has a verified deploy VSA (policy input `verifiedIn`), and those VSAs. */
  verifiedIn?: (imageDigest: string, bundleDigest: string) => Promise<{ environments: string[]; envelopes: string[] }>;
  /** The attestation verifiers (default: all in this thread); wire.ts puts Sigstore's on threads. */
  verifiers?: AttestationVerifier[];
}

interface Verified {
  evidence: Evidence;
  manifest: BundleFacts;
  integrity: Finding[];
}

/** Marks a file used now; false when it is gone. */
async function touch(path: string): Promise<boolean> {
  const now = new Date();
  return utimes(path, now, now).then(() => true, () => false);
}

/**
 * The real deploy steps: fetch from allow-listed registries only (SPEC §3), verify with the same
 * library `ct verify` uses, judge with the policy engine per target host, dispatch over the host
 * channel. Anything needed for a decision that is missing (trust store, policies) denies.
 */
export function realSteps(ctx: ServerContext, hub: HostHub, deps: StepDeps): DeploySteps {
  // The bundle's VSAs verified with the trust store in force: once per deploy run (not per host).
  const verifiedIn = (bundle: Extract<VerifiedBundle, { ok: true }>, run?: DeployRun) => {
    if (!deps.verifiedIn) return undefined;
    if (!run) return deps.verifiedIn(bundle.imageDigest, bundle.bundleDigest);
    return (run.verifiedIn ??= deps.verifiedIn(bundle.imageDigest, bundle.bundleDigest));
  };
  const dir = join(ctx.config.dataDir, 'bundles');
  mkdirSync(dir, { recursive: true });
  // A reference pinned by digest names immutable content: once fetched and verified under a given
  // trust material, the outcome is reused (bounded, LRU) until that trust material changes.
  const verified = new Map<string, Extract<VerifiedBundle, { ok: true }>>();
  const remember = (key: string, v: Extract<VerifiedBundle, { ok: true }>) => {
    verified.delete(key);
    verified.set(key, v);
    if (verified.size > 512) verified.delete(verified.keys().next().value!);
  };
  return {
    async fetchAndVerify(reference: string, _environment?: string, bundleDigest?: string): Promise<VerifiedBundle> {
      const store = deps.trust();
      if (!store) return { ok: false, transient: false, code: 'UNKNOWN_KEY', message: 'no trust store configured: nothing can be verified' };
      // The keyless signers the policies name are the identities whose Sigstore attestations count.
      const trust = withPolicyKeyless(store, deps.policies.current);
      const key = `${trustKeyOf(trust)}|${reference}|${bundleDigest ?? ''}`;
      const hit = verified.get(key);
      // Its file marked used now (retention removes bundles no deployment names after a day
      // unused); one removed meanwhile is fetched and verified again.
      if (hit && (await touch(hit.path))) {
        ctx.metrics.verifySeconds.observe({ cached: 'yes' }, 0);
        remember(key, hit);
        return hit;
      }
      if (hit) verified.delete(key);
      if (ctx.config.registries.allow.length === 0) return { ok: false, transient: false, code: 'REGISTRY_NOT_ALLOWED', message: 'no registry is allow-listed (registries.allow)' };
      const tmp = tempPathFor(join(dir, 'fetch.ctp'));
      let fetched;
      try {
        const host = reference.split('/')[0];
        fetched = await fetchCtp(reference, tmp, {
          allowedRegistries: ctx.config.registries.allow,
          allowedAddresses: ctx.config.registries.allowedAddresses,
          plainHttp: ctx.config.registries.insecure?.includes(host) ?? false,
          // A registry must not hold a deploy for ever: one deadline for the whole fetch.
          overall: SERVER_FETCH_DEADLINE,
          // A pinned .ctp: the registry does not get to choose among several signed bundles.
          ...(bundleDigest ? { bundleDigest } : {}),
        });
      } catch (e) {
        await rm(tmp, { force: true });
        const code = e instanceof CtError ? e.code : 'NETWORK_ERROR';
        return { ok: false, transient: TRANSIENT.has(code), code, message: (e as Error).message };
      }
      if (bundleDigest && fetched.bundleDigest !== bundleDigest) {
        await rm(tmp, { force: true });
        return { ok: false, transient: false, code: 'DIGEST_MISMATCH', message: `the registry served bundle ${fetched.bundleDigest}, the desired state pins ${bundleDigest}` };
      }
      const path = join(dir, `${fetched.bundleDigest.slice(7)}.ctp`);
      // Verified where it was fetched, and kept under its digest only once accepted: a rejected
      // bundle (anyone allowed to ask /api/v1/verify may name one) leaves nothing on the disk.
      try {
        const t0 = process.hrtime.bigint();
        // Requirements (predicates, quorum, thresholds) are the policy's to judge; the verifier runs
        // in audit mode so that only integrity failures reject here — those reject in every mode.
        // One read: the facts the policy judges come from the very archive that was verified.
        let archive;
        try {
          archive = await openCtpToVerify(tmp);
        } catch (e) {
          return { ok: false, transient: false, code: e instanceof CtError ? e.code : 'MALFORMED_BUNDLE', message: (e as Error).message };
        }
        const report = await verifyCtpArchive(archive, { trust, mode: 'audit', cache: deps.cache, ...(deps.verifiers ? { verifiers: deps.verifiers } : {}) });
        ctx.metrics.verifySeconds.observe({ cached: 'no' }, Number(process.hrtime.bigint() - t0) / 1e9);
        ctx.metrics.decisions.inc({ outcome: report.decision, code: report.code ?? 'none' });
        // A full or closed verification pool judged nothing: the deploy is retried, not denied.
        if (report.decision === 'REJECT') return { ok: false, transient: NOT_VERIFIED_CODES.has(report.code ?? ''), code: report.code ?? 'MALFORMED_BUNDLE', message: report.message ?? 'verification failed' };
        await rename(tmp, path);
        const v: Verified = { evidence: { ...report.evidence, fetchedReference: reference }, manifest: bundleFactsFromArchive(archive, path), integrity: report.findings.filter((f) => f.integrity) };
        const ok = { ok: true as const, path, bundleDigest: fetched.bundleDigest, imageDigest: fetched.imageDigest, evidence: v.evidence, manifest: v };
        if (/@sha256:[0-9a-f]{64}$/.test(reference)) remember(key, ok);
        deps.onVerified?.({ reference, imageDigest: fetched.imageDigest, bundleDigest: fetched.bundleDigest, evidence: v.evidence, facts: v.manifest, integrity: v.integrity, trustKey: trustKeyOf(trust) });
        return ok;
      } finally {
        await rm(tmp, { force: true });
      }
    },

    async decide(bundle, host, environment, policy, run) {
      const all = deps.policies.current;
      if (!all) return { allow: false, code: 'NO_POLICY', message: 'the policy repository could not be loaded: failing closed' };
      const named = policy === undefined ? undefined : all.get(policy);
      if (policy !== undefined && !named) return { allow: false, code: 'NO_POLICY', message: `no policy named ${JSON.stringify(policy)}` };
      const facts = policyHostFacts(host.facts, environment);
      // Within one deploy run the bundle, its evidence and VSAs are fixed: the verdict depends only
      // on the policies and on these host facts. Hosts whose facts are the same (a fleet of one
      // kind) share one evaluation; any host whose facts differ is judged on its own; a reload of
      // the policies meanwhile is judged afresh.
      const key = run ? `${policy ?? ''}\n${JSON.stringify(facts)}` : undefined;
      const known = key === undefined ? undefined : run?.verdicts?.get(key);
      if (known && known.policies === all) return known.verdict;
      const set = named ? new PolicySet([named]) : all;
      const v = bundle.manifest as Verified;
      const proven = (await verifiedIn(bundle, run))?.environments ?? [];
      const d = evaluate(set, { evidence: v.evidence, manifest: v.manifest, host: facts, findings: v.integrity, verifiedIn: proven });
      const first = d.violations[0];
      const verdict: PolicyVerdict = d.allow
        ? { allow: true, warnings: d.warnings.map((w) => `${w.code}: ${w.message}`) }
        : { allow: false, code: first?.code ?? 'POLICY_VIOLATION', message: first ? `${first.policy}/${first.rule}: ${first.message}` : 'denied by policy' };
      if (run && key !== undefined) (run.verdicts ??= new Map()).set(key, { policies: all, verdict });
      return verdict;
    },

    async dispatch(hostId, bundle, row, run) {
      // The host judges its own policies too: it gets the VSAs and verifies them with its trust store.
      const assignment = async () => {
        const vsas = (await verifiedIn(bundle, run))?.envelopes ?? [];
        return {
          deploymentId: row.id, environment: row.environment, app: row.app, bundle: row.reference, bundleDigest: bundle.bundleDigest, imageDigest: bundle.imageDigest, download: `/api/v1/hosts/bundles/${bundle.bundleDigest}`,
          ...(row.ports ? { ports: JSON.parse(row.ports) as PublishedPort[] } : {}), ...(vsas.length ? { vsas } : {}),
          ...(Number(row.suspended ?? 0) ? { suspended: true } : {}),
        };
      };
      // One assignment object for the whole fan-out: the hub serialises it once (HostHub.assign).
      const a = await (run ? (run.assignment ??= assignment()) : assignment());
      const out = await hub.assign(hostId, a, deps.hostTimeoutMs ?? 120_000);
      if (out.type !== 'status') return { state: out.type };
      return { state: out.state, code: out.code, message: out.message };
    },

    hostFacts: (hostId) => hub.connected(hostId),
  };
}
