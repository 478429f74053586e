import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import YAML from 'yaml';
import { parseExemptions } from '../src/k8s/exempt.js';
import { CtError } from '../src/core/errors.js';
import { claimRuleRegex } from './auth/oidc.js';
import { retentionConfig, type RetentionConfig } from './retention/prune.js';

/** Claim rules an OIDC token must satisfy (exact values or anchored patterns written `/re/`). */
export interface OidcIssuerConfig {
  issuer: string;
  audience: string;
  jwksUri?: string;
  role: Role;
  claims?: Record<string, string>;
  /** Refuse tokens valid longer than this (exp − iat, or exp − now without iat); default a day. */
  maxTokenLifetimeSeconds?: number;
}

export type Role = 'admin' | 'operator' | 'viewer' | 'auditor';

/** A people's sign-in issuer for the dashboard (authorization code + PKCE). */
export interface LoginIssuerConfig {
  issuer: string;
  clientId: string;
  /** Absent: a public client (PKCE only). */
  clientSecret?: string;
  /** The ID-token claim holding the user's groups (e.g. `groups`). */
  groupsClaim: string;
  /** Group → role; a user in no listed group cannot sign in. */
  roles: Record<string, Role>;
  /** Shown on the sign-in button. */
  name?: string;
}

export interface LoginConfig {
  oidc: LoginIssuerConfig[];
  /** Session lifetime (default 8 hours). */
  sessionTtlSeconds?: number;
  /** Non-public addresses the issuers may resolve to (e.g. 127.0.0.1 for a local issuer). */
  allowedAddresses?: string[];
  /** Logins in progress kept (all replicas); a start past it evicts the oldest (default 10,000). */
  maxPendingLogins?: number;
}

export interface ServerConfig {
  port: number;
  host: string;
  /** Where the embedded SQLite database and caches live. */
  dataDir: string;
  databaseUrl?: string;
  /** Policy directory, or a git URL / bare repository path followed at `policiesBranch` (policies/ by default). */
  policies: string;
  policiesBranch?: string;
  /** SSH allowed-signers file: when set, only policy commits signed by these keys are applied. */
  policiesAllowedSigners?: string;
  trustStore?: string;
  trustedRoot?: string;
  desiredState?: {
    repo: string;
    branch: string;
    path: string;
    /** Seconds between polls of the branch (webhooks trigger one at once): 1 to 2147483 (below 5 counts as 5), default 60. */
    pollSeconds?: number;
    /** SSH allowed-signers file: when set, only commits signed by these keys are applied. */
    allowedSigners?: string;
    /** Where deploy statuses are reported: the desired-state repository on GitHub or GitLab. */
    report?: { provider: 'github' | 'gitlab'; repository: string };
  };
  /** Registries deploys may fetch from (`host[:port]`), and non-public addresses they may reach (e.g. 127.0.0.1). */
  registries: { allow: string[]; allowedAddresses: string[]; /** Registries spoken to over plain http (local test registries only). */ insecure?: string[] };
  /** `allowedAddresses`: non-public addresses the API may resolve to (promotion and the deploy-status notifiers pass the URL guard). */
  github?: { apiUrl: string; token?: string; webhookSecrets: string[]; allowedAddresses?: string[] };
  gitlab?: { apiUrl: string; token?: string; webhookTokens: string[]; allowedAddresses?: string[] };
  /**
   * The key this server signs deploy VSAs with (PKCS#8 PEM, Ed25519: trust stores list no other kind); the
   * trust stores that judge them list it in the role `deployers`. Default: `deployer-key.pem` in
   * the data directory, made on first start.
   */
  deployer?: { keyFile?: string };
  oidc: OidcIssuerConfig[];
  /** Sign-in for people (the dashboard). Without it the dashboard only accepts API keys. */
  login?: LoginConfig;
  /** Bootstrap admin API key (hashed at start-up, never stored in clear). */
  adminApiKey?: string;
  /** The server's address as its users reach it (behind a proxy): sign-in redirects and links, status target URLs, the VSA verifier id. */
  publicUrl?: string;
  /** Largest request body (JSON API, webhooks), in bytes: 1 KiB to 64 MiB, default 1 MiB. */
  maxBodyBytes: number;
  /** Kubernetes admission webhooks under `/admission/` (docs/kubernetes.md), fed by this server's verifications. */
  admission?: {
    enabled?: boolean;
    environments?: string[];
    timeoutMs?: number;
    ttlSeconds?: number;
    /** The cluster's nodes enforce AppArmor (`ct admission serve --nodes-apparmor`): pods get and must keep the bundles' AppArmor profiles. */
    nodesAppArmor?: boolean;
    /** Bearer tokens the callers of `/admission/` must present (one per line; the API server's kubeconfig `token`). */
    tokenFile?: string;
    /** Environments whose denials are answered as allows with a warning (`--audit-environment`). */
    auditEnvironments?: string[];
    /** Images let through unverified (`--exempt-image`, src/k8s/exempt.ts). */
    exemptImages?: string[];
  };
  /** `/mcp` for agents: on by default; `readOnly` hides the tools that change what runs. */
  mcp?: { enabled?: boolean; readOnly?: boolean };
  /** Bounds of `GET /api/v1/hosts/{id}/logs?follow=1` (server/logs/follow.ts): per principal, per host, duration. */
  logFollow?: import('./logs/follow.js').FollowLimits;
  /** `GET /api/v1/events` (server/routes/events.ts): how often an open stream's credentials are checked again, its maximum duration. */
  events?: import('./routes/events.js').EventStreamLimits;
  /** Bounds of the host channel (server/channel/limits.ts): unauthenticated connections, their deadline, each host's status rate. */
  hostChannel?: import('./channel/limits.js').HostChannelLimits;
  /** How long host alerts, webhook delivery ids, unused bundles and reconcile records are kept (server/retention/prune.ts); other audit records are kept. */
  retention?: Partial<RetentionConfig>;
}

const DEFAULTS: ServerConfig = {
  port: 8080,
  host: '127.0.0.1',
  dataDir: './data',
  policies: 'policies',
  registries: { allow: [], allowedAddresses: [] },
  oidc: [],
  maxBodyBytes: 1024 * 1024,
};

/**
 * Every key a config file may hold (the compiler keeps this in step with ServerConfig): a key not
 * here is a typo (`prot: 9090`) that would otherwise leave the default in force unnoticed.
 */
/**
 * events.*: [lowest, highest]. maxSeconds at most a day (an EventSource reconnects on its own),
 * recheckMs from 100 ms (each recheck is a database read per open stream) to a day; the stream
 * caps at least 1 (0 would refuse every stream).
 */
const EVENT_LIMIT_BOUNDS = { maxSeconds: [1, 86_400], recheckMs: [100, 86_400_000], perPrincipal: [1, 10_000], maxStreams: [1, 1_000_000] } as const satisfies Record<keyof NonNullable<ServerConfig['events']>, readonly [number, number]>;

/**
 * logFollow.*: [lowest, highest]. maxSeconds (× 1000), pollMs and recheckMs become timers: past
 * 2^31−1 ms Node fires one after 1 ms (a follow's wait for a client that stopped reading ended at
 * once, and the host was asked again without backpressure). pollMs from 10 ms (each poll is a
 * request to the host), recheckMs from 100 ms (each a database read per open follow).
 */
const LOG_FOLLOW_BOUNDS = {
  perPrincipal: [1, 10_000], perHost: [1, 100_000], maxSeconds: [1, 86_400], pollMs: [10, 3_600_000], recheckMs: [100, 86_400_000],
} as const satisfies Record<keyof NonNullable<ServerConfig['logFollow']>, readonly [number, number]>;

/**
 * hostChannel.*: [lowest, highest]. handshakeMs is a timer (below 2^31−1 ms) and at least 100 ms
 * (a host on a slow link must finish in time); pingMs a timer too, at least 100 ms (each ping is a
 * frame per host); statusPerSecond at least 1 (a status held for want
 * of tokens waits at most a second per place in its host's queue).
 */
const HOST_CHANNEL_BOUNDS = {
  maxPending: [1, 1_000_000], maxPendingPerAddress: [1, 1_000_000], handshakeMs: [100, 600_000], pingMs: [100, 600_000], statusBurst: [1, 100_000], statusPerSecond: [1, 100_000],
} as const satisfies Record<keyof NonNullable<ServerConfig['hostChannel']>, readonly [number, number]>;

const KEYS: Record<keyof ServerConfig, true> = {
  port: true, host: true, dataDir: true, databaseUrl: true, policies: true, policiesBranch: true, policiesAllowedSigners: true,
  trustStore: true, trustedRoot: true, desiredState: true, registries: true, github: true, gitlab: true, deployer: true, oidc: true,
  login: true, adminApiKey: true, publicUrl: true, maxBodyBytes: true, admission: true, mcp: true, logFollow: true, events: true, hostChannel: true, retention: true,
};

/** The settings a config file may hold (docs/server.md lists each, test/server/config.test.ts checks). */
export const CONFIG_KEYS: readonly string[] = Object.keys(KEYS);

/**
 * Settings still taken, for one release, with a warning instead of stopping the start as unknown:
 * a file that held one was valid before it was dropped. Each is ignored; the text says what to do.
 */
const DEPRECATED: Record<string, string> = {
  localHost: 'nothing reads it (it never changed what the server does); remove it: a later release will refuse it as an unknown setting',
};

const list = (v: string | undefined) => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : undefined);

/**
 * One config file (CT_CONFIG, YAML or JSON) plus environment variables, over embedded defaults.
 * `warn` is told of each deprecated setting (`ct serve` logs them once the log is up).
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  overrides: Partial<ServerConfig> = {},
  warn: (message: string) => void = (message) => process.emitWarning(message, 'DeprecationWarning'),
): ServerConfig {
  let file: Partial<ServerConfig> = {};
  if (env.CT_CONFIG) {
    let text: string;
    try {
      text = readFileSync(env.CT_CONFIG, 'utf8');
    } catch (e) {
      throw new CtError('IO_ERROR', `config ${env.CT_CONFIG}: ${(e as Error).message}`, { path: env.CT_CONFIG }, { cause: e });
    }
    let doc: unknown;
    try {
      doc = YAML.parse(text) ?? {};
    } catch (e) {
      throw new CtError('USAGE', `config ${env.CT_CONFIG} is not valid YAML or JSON: ${(e as Error).message}`, { path: env.CT_CONFIG }, { cause: e });
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new CtError('USAGE', `config ${env.CT_CONFIG} must be a mapping of settings (docs/server.md "Configuration")`, { path: env.CT_CONFIG });
    const unknown = Object.keys(doc).filter((k) => !Object.hasOwn(KEYS, k) && !Object.hasOwn(DEPRECATED, k));
    if (unknown.length > 0) {
      throw new CtError('USAGE', `config ${env.CT_CONFIG}: unknown setting${unknown.length > 1 ? 's' : ''} ${unknown.slice(0, 5).map((k) => JSON.stringify(k.slice(0, 64))).join(', ')} (the settings are listed in docs/server.md "Configuration")`, { path: env.CT_CONFIG });
    }
    const kept: Record<string, unknown> = { ...doc };
    for (const [k, what] of Object.entries(DEPRECATED)) {
      if (!Object.hasOwn(kept, k)) continue;
      warn(`config ${env.CT_CONFIG}: the setting ${k} is deprecated and ignored: ${what}`);
      delete kept[k];
    }
    file = kept as Partial<ServerConfig>;
  }
  const cfg: ServerConfig = { ...DEFAULTS, ...file, ...overrides };
  if (env.PORT) cfg.port = Number(env.PORT);
  if (env.HOST) cfg.host = env.HOST;
  if (env.DATABASE_URL) cfg.databaseUrl = env.DATABASE_URL;
  if (env.CT_DATA_DIR) cfg.dataDir = env.CT_DATA_DIR;
  if (env.CT_POLICIES) cfg.policies = env.CT_POLICIES;
  if (env.CT_TRUST_STORE) cfg.trustStore = env.CT_TRUST_STORE;
  if (env.CT_ADMIN_API_KEY) cfg.adminApiKey = env.CT_ADMIN_API_KEY;
  if (env.CT_MCP_READ_ONLY) cfg.mcp = { ...cfg.mcp, readOnly: env.CT_MCP_READ_ONLY === 'true' || env.CT_MCP_READ_ONLY === '1' };
  if (env.CT_REGISTRIES) cfg.registries = { ...cfg.registries, allow: list(env.CT_REGISTRIES) ?? [] };
  // The forges' variables each replace one field of the file's section, nothing more: a token from
  // the environment rebuilt the section from scratch, silently dropping the file's
  // allowedAddresses, and an API URL was ignored unless a token or secret was set too.
  const ghSecrets = list(env.GITHUB_WEBHOOK_SECRETS ?? env.GITHUB_WEBHOOK_SECRET);
  if (ghSecrets || env.GITHUB_TOKEN || env.GITHUB_API_URL) {
    const github = { apiUrl: 'https://api.github.com', webhookSecrets: [], ...cfg.github };
    if (env.GITHUB_API_URL) github.apiUrl = env.GITHUB_API_URL;
    if (env.GITHUB_TOKEN) github.token = env.GITHUB_TOKEN;
    if (ghSecrets) github.webhookSecrets = ghSecrets;
    cfg.github = github;
  }
  const glTokens = list(env.GITLAB_WEBHOOK_TOKENS ?? env.GITLAB_WEBHOOK_TOKEN);
  if (glTokens || env.GITLAB_TOKEN || env.GITLAB_API_URL) {
    const gitlab = { apiUrl: 'https://gitlab.com', webhookTokens: [], ...cfg.gitlab };
    if (env.GITLAB_API_URL) gitlab.apiUrl = env.GITLAB_API_URL;
    if (env.GITLAB_TOKEN) gitlab.token = env.GITLAB_TOKEN;
    if (glTokens) gitlab.webhookTokens = glTokens;
    cfg.gitlab = gitlab;
  }
  // The API reads a bearer token as an API key only when it starts with ctk_ (else as a JWT): a
  // bootstrap key without it started a server no request could act on, each told "not a JWT".
  if (cfg.adminApiKey !== undefined && (typeof cfg.adminApiKey !== 'string' || !/^ctk_[\x21-\x7e]{20,196}$/.test(cfg.adminApiKey))) {
    throw new CtError('USAGE', 'CT_ADMIN_API_KEY (adminApiKey) must start with ctk_ followed by 20 to 196 printable characters, no spaces: make one with  echo ctk_$(openssl rand -hex 24)');
  }
  // The body parsers' limit, checked here: a value body-parser cannot read ("1 megabyte") threw a
  // TypeError stack trace half-way through the start, after the database was opened. At most 64 MiB:
  // a body is held in memory before its sender is authenticated (a webhook's signature covers it
  // all), and GitHub sends no webhook payload over 25 MB.
  if (!Number.isInteger(cfg.maxBodyBytes) || cfg.maxBodyBytes < 1024 || cfg.maxBodyBytes > 67_108_864) {
    throw new CtError('USAGE', `maxBodyBytes must be a whole number of bytes from 1024 to 67108864 (64 MiB), got ${String(cfg.maxBodyBytes).slice(0, 64)}`);
  }
  if (!Number.isInteger(cfg.port) || cfg.port < 0 || cfg.port > 65535) throw new CtError('USAGE', `PORT (or port in CT_CONFIG) must be 0–65535, got ${String(env.PORT ?? cfg.port).slice(0, 64)}`);
  for (const o of cfg.oidc ?? []) {
    // Without claim rules any workflow of any repository on that issuer could act with this role.
    if (!o.claims || Object.keys(o.claims).length === 0) throw new CtError('USAGE', `oidc issuer ${o.issuer}: claim rules are required (e.g. repository, repository_owner or project_path)`);
    const maxLife = o.maxTokenLifetimeSeconds;
    if (maxLife !== undefined && (!Number.isInteger(maxLife) || maxLife < 60 || maxLife > 2_678_400)) throw new CtError('USAGE', `oidc issuer ${o.issuer}: maxTokenLifetimeSeconds must be a whole number from 60 to 2678400 (31 days: GitLab's longest job timeout is a month), got ${String(maxLife).slice(0, 64)}`);
    for (const [claim, rule] of Object.entries(o.claims)) {
      if (typeof rule !== 'string') throw new CtError('USAGE', `oidc issuer ${o.issuer}: the rule for claim ${claim} must be a string (exact, or /regex/)`);
      try {
        claimRuleRegex(rule);
      } catch (e) {
        throw new CtError('USAGE', `oidc issuer ${o.issuer}: the rule for claim ${claim} is not a regular expression (RE2 syntax): ${(e as Error).message.slice(0, 200)}`);
      }
    }
  }
  for (const o of cfg.login?.oidc ?? []) {
    if (!o.issuer || !o.clientId || !o.groupsClaim || !o.roles || Object.keys(o.roles).length === 0) {
      throw new CtError('USAGE', `login.oidc issuer ${o.issuer}: issuer, clientId, groupsClaim and roles are required`);
    }
    const bad = Object.values(o.roles).find((r) => !['admin', 'operator', 'viewer', 'auditor'].includes(r));
    if (bad) throw new CtError('USAGE', `login.oidc issuer ${o.issuer}: unknown role ${bad}`);
  }
  // Sessions end sessionTtlSeconds after sign-in (and so do their cookies): a value that is not a
  // whole number failed every sign-in with a 500 at its database write, unnoticed until then.
  const ttl = cfg.login?.sessionTtlSeconds;
  if (ttl !== undefined && (!Number.isInteger(ttl) || ttl < 60 || ttl > 31_536_000)) throw new CtError('USAGE', `login.sessionTtlSeconds must be a whole number from 60 to 31536000 (a year), got ${String(ttl).slice(0, 64)}`);
  const maxPending = cfg.login?.maxPendingLogins;
  if (maxPending !== undefined && (!Number.isInteger(maxPending) || maxPending < 1 || maxPending > 1_000_000)) throw new CtError('USAGE', 'login.maxPendingLogins must be a whole number from 1 to 1000000');
  for (const [k, v] of Object.entries(cfg.events ?? {})) {
    if (!Object.hasOwn(EVENT_LIMIT_BOUNDS, k)) throw new CtError('USAGE', `events.${k.slice(0, 64)}: unknown field (${Object.keys(EVENT_LIMIT_BOUNDS).join(', ')})`);
    // Both become timers (maxSeconds × 1000, recheckMs): past 2^31−1 ms Node fires one at once, so
    // every stream would end as it opens and every EventSource reconnect in a tight loop.
    const [lo, hi] = EVENT_LIMIT_BOUNDS[k as keyof typeof EVENT_LIMIT_BOUNDS];
    if (!Number.isInteger(v) || (v as number) < lo || (v as number) > hi) throw new CtError('USAGE', `events.${k} must be a whole number from ${lo} to ${hi}, got ${String(v).slice(0, 64)}`);
  }
  for (const [k, v] of Object.entries(cfg.logFollow ?? {})) {
    if (!Object.hasOwn(LOG_FOLLOW_BOUNDS, k)) throw new CtError('USAGE', `logFollow.${k.slice(0, 64)}: unknown field (${Object.keys(LOG_FOLLOW_BOUNDS).join(', ')})`);
    const [lo, hi] = LOG_FOLLOW_BOUNDS[k as keyof typeof LOG_FOLLOW_BOUNDS];
    if (!Number.isInteger(v) || (v as number) < lo || (v as number) > hi) throw new CtError('USAGE', `logFollow.${k} must be a whole number from ${lo} to ${hi}, got ${String(v).slice(0, 64)}`);
  }
  const channel: unknown = cfg.hostChannel;
  if (channel !== undefined && (typeof channel !== 'object' || channel === null || Array.isArray(channel))) throw new CtError('USAGE', `hostChannel must be a mapping (${Object.keys(HOST_CHANNEL_BOUNDS).join(', ')})`);
  for (const [k, v] of Object.entries(cfg.hostChannel ?? {})) {
    if (!Object.hasOwn(HOST_CHANNEL_BOUNDS, k)) throw new CtError('USAGE', `hostChannel.${k.slice(0, 64)}: unknown field (${Object.keys(HOST_CHANNEL_BOUNDS).join(', ')})`);
    const [lo, hi] = HOST_CHANNEL_BOUNDS[k as keyof typeof HOST_CHANNEL_BOUNDS];
    if (!Number.isInteger(v) || (v as number) < lo || (v as number) > hi) throw new CtError('USAGE', `hostChannel.${k} must be a whole number from ${lo} to ${hi}, got ${String(v).slice(0, 64)}`);
  }
  // A timer (setInterval, × 1000): past 2^31−1 ms, or not a number, Node fires it every
  // millisecond and the server queues a reconcile as fast as it can. Omitted means 60.
  const poll = cfg.desiredState?.pollSeconds;
  if (cfg.desiredState && poll !== undefined && (!Number.isInteger(poll) || poll < 1 || poll > 2_147_483)) {
    throw new CtError('USAGE', `desiredState.pollSeconds must be a whole number from 1 to 2147483 (about 24.8 days), got ${String(poll).slice(0, 64)}`);
  }
  // Checked at start: a typo must not delete records (or keep them without bound) unnoticed.
  retentionConfig(cfg.retention);
  checkAdmissionConfig(cfg.admission);
  cfg.dataDir = resolve(cfg.dataDir);
  return cfg;
}

/** The admission settings and their types: a misspelt `nodesApparmor` left AppArmor off, unnoticed. */
const ADMISSION_FIELDS: Record<string, (v: unknown) => boolean> = {
  enabled: (v) => typeof v === 'boolean',
  // null and 0 keep meaning "the default", as before these checks.
  environments: (v) => v === null || (Array.isArray(v) && v.length <= 64 && v.every((e) => typeof e === 'string')),
  timeoutMs: (v) => v === null || (Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 30_000),
  ttlSeconds: (v) => v === null || (Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 604_800),
  nodesAppArmor: (v) => typeof v === 'boolean',
  tokenFile: (v) => v === null || typeof v === 'string',
  auditEnvironments: (v) => v === null || (Array.isArray(v) && v.length <= 64 && v.every((e) => typeof e === 'string')),
  exemptImages: (v) => v === null || (Array.isArray(v) && v.every((e) => typeof e === 'string')),
};

function checkAdmissionConfig(v: unknown): void {
  if (v === undefined || v === null) return;
  const fields = Object.keys(ADMISSION_FIELDS).join(', ');
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new CtError('USAGE', `admission must be a mapping (${fields})`);
  for (const [k, value] of Object.entries(v)) {
    if (!Object.hasOwn(ADMISSION_FIELDS, k)) throw new CtError('USAGE', `admission.${k.slice(0, 64)}: unknown field (${fields})`);
    if (!ADMISSION_FIELDS[k](value)) throw new CtError('USAGE', `admission.${k}: ${JSON.stringify(value)?.slice(0, 64)} is not what it takes (enabled, nodesAppArmor: true or false; environments, auditEnvironments: names; exemptImages: registry/repository patterns; timeoutMs: 0–30000, the API server's limit; ttlSeconds: 0–604800; tokenFile: a path)`);
  }
  const a = v as { environments?: string[] | null; auditEnvironments?: string[] | null };
  if (a.auditEnvironments?.length && !a.environments?.length) throw new CtError('USAGE', 'admission.auditEnvironments needs admission.environments: a misspelt audit environment would be enforced');
  // The patterns themselves, now: a bad one stops the start with its reason.
  const exempt = (v as { exemptImages?: string[] | null }).exemptImages;
  if (exempt) parseExemptions(exempt, 'admission.exemptImages');
}

