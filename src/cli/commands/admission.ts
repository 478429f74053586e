/**
 * `ct admission serve`: Kubernetes admission webhooks (docs/kubernetes.md). The server lives in
 * server/admission/ and is loaded by path at run time; the library never imports it.
 */
import type { Command } from 'commander';
import { action, processIo } from '../io.js';
import { CtError } from '../../core/errors.js';
import { addRegistryOptions, clientOptionsFrom, type RegistryCliOptions } from '../../oci/cli-options.js';

interface ServeOptions extends RegistryCliOptions {
  cert?: string;
  key?: string;
  clientCa?: string;
  tokenFile?: string;
  host: string;
  port: string;
  trustStore?: string;
  trustedRoot?: string;
  policies: string[];
  environment?: string[];
  insecureRegistry?: string[];
  webhookTimeout?: string;
  ttl?: string;
  nodesApparmor?: boolean;
  auditEnvironment?: string[];
  exemptImage?: string[];
  metricsPort?: string;
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, ...v.split(',').map((s) => s.trim()).filter(Boolean)];

function positive(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new CtError('USAGE', `${name} ${v}: not a positive integer`, {});
  return n;
}

type ServeFn = (o: unknown, io: typeof processIo) => Promise<number>;

/**
 * `serve`: the server's entry, given by the container image's bundle (server/admission/image-entry.ts,
 * which imports it so that it is bundled); otherwise loaded by path from the built tree.
 */
function portOf(name: string, v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < 0 || n > 65535) throw new CtError('USAGE', `${name} ${v}: not 0-65535`, {});
  return n;
}

export function register(program: Command, o: { serve?: ServeFn } = {}): void {
  const serveFn = o.serve;
  const admission = program.command('admission').description('Kubernetes admission webhooks for verified bundles');
  const serve = admission
    .command('serve')
    .description('serve the mutating and validating webhooks over HTTPS (POST /mutate/<environment>, /validate/<environment>)')
    .option('--cert <file>', 'TLS certificate (PEM), reloaded when it changes (required)')
    .option('--key <file>', 'TLS private key (PEM), reloaded when it changes (required)')
    .option('--client-ca <file>', 'require client certificates signed by this CA (the API server\'s)')
    .option('--token-file <file>', 'require a bearer token listed in this file (one per line, reloaded when it changes) on webhook calls; /healthz stays open')
    .option('--host <addr>', 'address to listen on (default: every address, IPv6 and IPv4)')
    .option('--port <n>', 'port to listen on', '8443')
    .option('--trust-store <file>', 'VCS trust store JSON (required)')
    .option('--trusted-root <file>', 'Sigstore TrustedRoot JSON for keyless bundles')
    .option('--policies <dir>', 'policy directory (repeatable)', collect, [])
    .option('--environment <name>', 'environments that may be named in webhook paths (repeatable; default any)', collect)
    .option('--insecure-registry <host[:port]>', 'registries spoken to over plain http (local test registries only)', collect)
    .option('--webhook-timeout <ms>', 'answer within this many ms (default 9000; keep under timeoutSeconds)')
    .option('--nodes-apparmor', 'the nodes enforce AppArmor: pods get and must keep their bundles\' AppArmor profiles, and policies that require AppArmor can pass (without it no AppArmor profile is set: the kubelet refuses one where AppArmor is off)')
    .option('--ttl <seconds>', 'how long verified bundles and verdicts are cached (default 600)')
    .option('--audit-environment <name>', 'audit only in this environment: what would be denied is allowed, with a warning saying why, and logged (repeatable)', collect)
    .option('--metrics-port <n>', 'also serve GET /metrics over plain HTTP on this port, for Prometheus without the webhook\'s client certificate or token')
    .option('--exempt-image <registry/repository>', 'let these images through unverified and untouched (repeatable; * within a path component, a last /** for any depth; the registry literal)', collect);
  addRegistryOptions(serve).action(
    action(async (o: ServeOptions) => {
      if (!o.cert || !o.key) throw new CtError('USAGE', 'ct admission serve needs --cert and --key (the API server calls webhooks over HTTPS only)', {});
      if (!o.trustStore) throw new CtError('USAGE', 'ct admission serve needs --trust-store', {});
      if (o.policies.length === 0) throw new CtError('USAGE', 'ct admission serve needs --policies DIR', {});
      const port = portOf('--port', o.port);
      const registry = await clientOptionsFrom(o);
      const serveAdmission = serveFn ?? ((await import(new URL('../../../server/admission/main.js', import.meta.url).href)) as { serveAdmission: ServeFn }).serveAdmission;
      return serveAdmission(
        {
          ...(o.host !== undefined ? { host: o.host } : {}),
          port,
          certFile: o.cert,
          keyFile: o.key,
          ...(o.clientCa ? { clientCaFile: o.clientCa } : {}),
          ...(o.tokenFile ? { tokenFile: o.tokenFile } : {}),
          trustStore: o.trustStore,
          ...(o.trustedRoot ? { trustedRoot: o.trustedRoot } : {}),
          policies: o.policies,
          registry: { ...registry, allowedRegistries: registry.allowedRegistries ?? [], insecure: o.insecureRegistry ?? [] },
          ...(o.environment ? { environments: o.environment } : {}),
          timeoutMs: positive('--webhook-timeout', o.webhookTimeout),
          ttlSeconds: positive('--ttl', o.ttl),
          nodesAppArmor: Boolean(o.nodesApparmor),
          ...(o.auditEnvironment ? { auditEnvironments: o.auditEnvironment } : {}),
          ...(o.exemptImage ? { exemptImages: o.exemptImage } : {}),
          ...(o.metricsPort !== undefined ? { metricsPort: portOf('--metrics-port', o.metricsPort) } : {}),
        },
        processIo,
      );
    }),
  );
}
