/**
 * `ct admission serve`: the admission webhooks on their own HTTPS server, with the trust store,
 * the policy directories (reloaded periodically: a broken reload keeps the previous set) and the
 * registry allow-list given on the command line. src/cli loads this file by path at run time.
 */
import pino from 'pino';
import { loadTrustStore, trustStoreDigest } from '../../src/trust/store.js';
import { loadTrustedRootFile } from '../../src/verify/sigstore/trusted-root.js';
import type { TrustMaterial } from '../../src/verify/report.js';
import { PolicyStore } from '../../src/policy/store.js';
import { AdmissionJudge } from '../../src/k8s/verdicts.js';
import type { ClientOptions } from '../../src/oci/client.js';
import { CtError } from '../../src/core/errors.js';
import { admissionHandler, type AdmissionDecisionRecord } from './handler.js';
import { startTlsServer, type RunningTlsServer } from './tls-server.js';

export interface AdmissionServeOptions {
  host: string;
  port: number;
  certFile: string;
  keyFile: string;
  clientCaFile?: string;
  trustStore: string;
  trustedRoot?: string;
  policies: string[];
  registry: ClientOptions & { allowedRegistries: string[]; insecure?: string[] };
  environments?: string[];
  timeoutMs?: number;
  ttlSeconds?: number;
  policyReloadSeconds?: number;
  certReloadMs?: number;
  /** The nodes' kernels enforce AppArmor (policies requiring AppArmor can then pass). */
  nodesAppArmor?: boolean;
  /** Also called for every recorded decision (not for dry runs). */
  onDecision?: (r: AdmissionDecisionRecord) => void;
}

interface Io {
  out(t: string): void;
  err(t: string): void;
}

export interface RunningAdmission extends RunningTlsServer {
  judge: AdmissionJudge;
  policies: PolicyStore;
}

export async function startAdmission(o: AdmissionServeOptions, log = pino({ level: process.env.LOG_LEVEL ?? 'info' })): Promise<RunningAdmission> {
  const store = await loadTrustStore(o.trustStore);
  const root = o.trustedRoot ? await loadTrustedRootFile(o.trustedRoot) : undefined;
  const trust: TrustMaterial = { store, storeDigest: trustStoreDigest(store), ...(root ? { trustedRoot: root, trustedRootDigest: root.digest } : {}) };
  const policies = new PolicyStore(o.policies);
  const loaded = await policies.reload();
  if (!loaded.ok) throw new CtError('POLICY_INVALID', `policies failed to load: ${loaded.error?.message ?? 'unknown error'}`, { issues: loaded.issues.slice(0, 20) });
  const judge = new AdmissionJudge({ trust: () => trust, policies: () => policies.current, registry: o.registry, ...(o.nodesAppArmor ? { nodes: { apparmor: { present: true, enforcing: true } } } : {}), ...(o.ttlSeconds ? { ttlMs: o.ttlSeconds * 1000 } : {}) });
  const handler = admissionHandler({
    judge,
    ...(o.environments ? { environments: o.environments } : {}),
    ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}),
    log,
    onDecision: (r) => {
      log.info({ decision: r }, 'admission decision recorded');
      o.onDecision?.(r);
    },
  });
  const server = await startTlsServer({ host: o.host, port: o.port, certFile: o.certFile, keyFile: o.keyFile, ...(o.clientCaFile ? { clientCaFile: o.clientCaFile } : {}), reloadIntervalMs: o.certReloadMs, log }, handler);
  const every = Math.max(5, o.policyReloadSeconds ?? 60) * 1000;
  const timer = setInterval(() => void policies.reload().then((r) => !r.ok && log.error({ error: r.error }, 'policy reload failed: keeping the previous set')), every);
  timer.unref();
  return {
    ...server,
    judge,
    policies,
    async close() {
      clearInterval(timer);
      await server.close();
    },
  };
}

export async function serveAdmission(o: AdmissionServeOptions, io: Io): Promise<number> {
  const running = await startAdmission(o);
  io.out(
    [
      `Cerro Torre admission webhooks listening on ${running.url}`,
      `  mutate:   ${running.url}/mutate/<environment>   validate: ${running.url}/validate/<environment>   health: ${running.url}/healthz`,
      `  certificate: ${o.certFile} (reloaded when it changes)${o.clientCaFile ? `; client certificates from ${o.clientCaFile}` : ''}`,
      `  registries: ${o.registry.allowedRegistries.join(', ') || 'none allow-listed: every image is denied'}`,
      `  policies: ${o.policies.join(', ')}`,
    ].join('\n'),
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await running.close();
  return 0;
}
