import { loadConfig } from './config.js';
import { startServer } from './start.js';
import { withoutCredentials } from './gitops/git.js';
import { deployPipeline } from './deploy/wire.js';
import { mintLoginLink } from './ui/login-links.js';
import { printsTerminalLink } from './auth/configured-trust.js';

interface Io { out(t: string): void; err(t: string): void }

/** `ct serve`: start with embedded defaults, say where to look, stop cleanly on SIGINT/SIGTERM. */
export async function serveFromEnvironment(io: Io): Promise<number> {
  // Deprecated settings are told in the server's log, which starts with the server.
  const deprecated: string[] = [];
  const config = loadConfig(process.env, {}, (m) => deprecated.push(m));
  const server = await startServer(config, { extend: (ctx) => deployPipeline(ctx) });
  for (const m of deprecated) server.ctx.log.warn(m);
  // A server on this machine only, with no sign-in issuer (npm start's defaults): whoever reads
  // this terminal gets a one-time link to the dashboard. Reachable servers sign people in by OIDC.
  let dashboard = `${server.url}/   (sign-in: ${config.login?.oidc.length ? `${config.login.oidc.length} OpenID Connect issuer(s)` : 'none configured (login.oidc in CT_CONFIG)'})`;
  if (printsTerminalLink(config.host, config.login?.oidc.length ?? 0)) {
    const link = await mintLoginLink(server.ctx.db, { role: 'admin', name: 'local admin', by: { kind: 'terminal', id: 'ct serve', role: 'admin' }, minter: 'terminal' });
    const another = config.adminApiKey
      ? `another: curl -X POST -H "authorization: Bearer $CT_ADMIN_API_KEY" ${server.url}/api/v1/login-links`
      : 'another: restart, or start with CT_ADMIN_API_KEY set and POST /api/v1/login-links with it';
    dashboard = `${server.url}/auth/link?token=${link.token}\n             (open it and press Sign in: one-time sign-in as admin, for whoever reads this terminal, within 10 minutes; no login.oidc issuer is configured;\n              ${another})`;
  }
  // Named as if in force when it failed to load, a trust store or policy set read as loaded here.
  // `until`: policies are reloaded (POST /api/v1/policies/reload); the trust store is read once, at start.
  const failedToLoad = (probe: string, until: string): string => {
    const state = server.ctx.readiness[probe]?.();
    return state === undefined || state === 'ok' ? '' : `   FAILED TO LOAD: ${state}; every deploy is refused until ${until} (the log says why)`;
  };
  io.out(
    [
      `Cerro Torre deploy server listening on ${server.url}`,
      `  health:   ${server.url}/healthz   readiness: ${server.url}/readyz   metrics: ${server.url}/metrics`,
      `  dashboard: ${dashboard}`,
      `  API:      ${server.url}/api/v1/…   (every route: ${server.url}/openapi.json)`,
      `  webhooks: ${server.url}/webhooks/github   ${server.url}/webhooks/gitlab`,
      `  storage:  ${config.databaseUrl ? 'PostgreSQL (DATABASE_URL)' : `SQLite in ${config.dataDir}/ct.db`}`,
      `  policies: ${withoutCredentials(config.policies)}${failedToLoad('policies', 'it loads')}`,
      `  trust store: ${config.trustStore ? `${config.trustStore}${failedToLoad('trust', 'the server is restarted with a trust store that loads')}` : 'none (set CT_TRUST_STORE or trustStore): every verification fails closed until one is set'}`,
      `  registries: ${config.registries.allow.length ? config.registries.allow.join(', ') : 'none allow-listed (CT_REGISTRIES): deploys are refused'}`,
      config.desiredState ? `  desired state: ${withoutCredentials(config.desiredState.repo)} (${config.desiredState.branch})` : '  desired state: none configured (set desiredState in CT_CONFIG)',
      ...(config.admission?.enabled
        ? [`  admission: ${server.url}/admission/mutate/<env>   ${server.url}/admission/validate/<env>   (${(config.admission.environments ?? []).join(', ') || 'every environment'}; ${config.admission.tokenFile ? `callers need a token of ${config.admission.tokenFile}` : 'no caller is authenticated: set admission.tokenFile'}; AppArmor on the nodes: ${config.admission.nodesAppArmor ? 'yes' : 'not said (admission.nodesAppArmor): bundles\' AppArmor profiles are not set'}${config.admission.auditEnvironments?.length ? `; audit only: ${config.admission.auditEnvironments.join(', ')}` : ''}${config.admission.exemptImages?.length ? `; exempt: ${config.admission.exemptImages.join(', ')}` : ''})`]
        : []),
    ].join('\n'),
  );
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await server.close();
  return 0;
}
