import type { NextFunction, Request, Response } from 'express';
import Ajv2020Module from 'ajv/dist/2020.js';
import { sendError } from './http-error.js';
import { NAME } from '../src/core/name.js';
import { PAGE_CURSOR } from '../src/protocol/page-cursor.js';
import { DEPLOY_STATUSES } from '../src/protocol/deploy-status.js';

const port = { type: 'integer', minimum: 1, maximum: 65535 };
const Ajv2020 = Ajv2020Module as unknown as typeof Ajv2020Module.default;

const error = { $ref: '#/components/schemas/Error' };
const name = { type: 'string', pattern: NAME.source };
/** A newest-first list's page (server/routes/page.ts): at most `max` rows, after the `before` cursor (a previous page's `next`). */
const page = (max: number) => [
  { name: 'limit', in: 'query', description: `rows a page holds: at most ${max}, a larger limit is read as ${max}`, schema: { type: 'integer', minimum: 1 } },
  { name: 'before', in: 'query', description: 'the `next` of the previous page', schema: { type: 'string', pattern: PAGE_CURSOR.source } },
];
const labels = { type: 'object', additionalProperties: { type: 'string', maxLength: 256 }, maxProperties: 64 };
const digestRef = { type: 'string', pattern: '^[a-z0-9.-]+(?::\\d{1,5})?/[a-z0-9._/-]+(?::[\\w.-]{1,128})?@sha256:[0-9a-f]{64}$' };
const secured = [{ bearer: [] }];
const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [String(c), { description: 'error', content: { 'application/json': { schema: error } } }]));
const json = (schema: object, description = 'ok') => ({ description, content: { 'application/json': { schema } } });

/** Request bodies, by operation id; the same schemas validate requests (Ajv) and document them. */
export const REQUEST_SCHEMAS: Record<string, object> = {
  createDeployment: {
    type: 'object', additionalProperties: false, required: ['environment', 'app', 'bundle'],
    properties: { environment: name, app: name, bundle: digestRef, bundleDigest: { type: 'string', pattern: '^sha256:[0-9a-f]{64}$' }, hosts: labels, commit: { type: 'string', pattern: '^[0-9a-f]{40}$' },
      ports: {
        type: 'array', maxItems: 32,
        items: { type: 'object', additionalProperties: false, required: ['host', 'container'], properties: { host: port, container: port, address: { type: 'string', maxLength: 15 }, protocol: { type: 'string', enum: ['tcp', 'udp', 'sctp'] } } },
      },
    },
  },
  createLoginLink: {
    type: 'object', additionalProperties: false,
    properties: { role: { type: 'string', enum: ['viewer', 'operator', 'auditor', 'admin'] }, name: { type: 'string', minLength: 1, maxLength: 100, pattern: '^[^\\u0000-\\u001f]+$' } },
  },
  verify: {
    type: 'object', additionalProperties: false,
    properties: { reference: digestRef, digest: { type: 'string', pattern: '^sha256:[0-9a-f]{64}$' }, policy: { type: 'string', maxLength: 200 }, environment: name },
    oneOf: [{ required: ['reference'] }, { required: ['digest'] }],
  },
  createApiKey: {
    type: 'object', additionalProperties: false, required: ['name', 'role'],
    properties: { name, role: { type: 'string', enum: ['viewer', 'operator', 'auditor', 'admin'] }, ttlSeconds: { type: 'integer', minimum: 60, maximum: 31622400 } },
  },
  createEnrollmentToken: {
    type: 'object', additionalProperties: false,
    properties: { labels, ttlSeconds: { type: 'integer', minimum: 60, maximum: 604800 } },
  },
  policyImpact: {
    type: 'object', additionalProperties: false, required: ['files'],
    properties: {
      files: { type: 'array', maxItems: 50, items: { type: 'object', additionalProperties: false, required: ['path', 'text'], properties: { path: { type: 'string', maxLength: 200 }, text: { type: 'string', maxLength: 262144 } } } },
      remove: { type: 'array', maxItems: 50, items: { type: 'string', maxLength: 200 } },
      environment: name,
    },
  },
  containerAction: {
    type: 'object', additionalProperties: false, required: ['action'],
    properties: {
      action: { enum: ['stop', 'start', 'restart', 'kill', 'pause', 'resume', 'remove'] },
      signal: { enum: ['TERM', 'KILL', 'INT', 'HUP', 'QUIT', 'USR1', 'USR2', 'SIGTERM', 'SIGKILL', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] },
      graceSeconds: { type: 'number', minimum: 0, maximum: 300 },
    },
  },
  createPromotion: {
    type: 'object', additionalProperties: false, required: ['app', 'from', 'to'],
    properties: { app: name, from: name, to: name },
  },
  enrollHost: {
    type: 'object', additionalProperties: false, required: ['token', 'name', 'publicKey'],
    properties: { token: { type: 'string', maxLength: 200 }, name, publicKey: { type: 'string', maxLength: 200 }, facts: { type: 'object' } },
  },
};

const body = (op: string) => ({ required: true, content: { 'application/json': { schema: REQUEST_SCHEMAS[op] } } });

/** One line per operation, by operation id (shown by API docs and generated clients). */
const SUMMARIES: Record<string, string> = {
  health: 'Liveness', ready: 'Readiness (database and queue)', metrics: 'Prometheus metrics', openapi: 'This OpenAPI description',
  githubWebhook: 'GitHub webhook delivery (JSON or form-encoded)', gitlabWebhook: 'GitLab webhook delivery',
  listDeployments: 'List deployments', createDeployment: 'Deploy a bundle', getDeployment: 'Get a deployment', rollbackDeployment: 'Roll a deployment back',
  verify: 'Verify and judge a bundle', listPolicies: 'List the loaded policies', policyImpact: 'Impact of a policy change on live deployments',
  reloadPolicies: 'Reload the policies', listHosts: 'List hosts', createEnrollmentToken: 'Create a host enrollment token', enrollHost: 'Enroll a host', removeHost: 'Remove (decommission) a host',
  containerLogs: 'Logs of a container on a host', downloadBundle: 'Download a bundle assigned to the calling host', hostChannel: 'Host channel (WebSocket)',
  drift: 'Drift between hosts and the desired state', searchAudit: 'Search the audit log', sync: 'Reconcile the desired state now', syncStatus: 'The desired-state commit in force and the last reconcile',
  mcp: 'Model Context Protocol endpoint', mcpStream: 'MCP event stream (not offered)', mcpSession: 'MCP session end (not offered)',
  protectedResource: 'OAuth protected resource metadata', protectedResourceMcp: 'OAuth protected resource metadata of /mcp', events: 'Server-sent events',
  overview: 'Environments × apps overview', deploymentEvidence: 'Evidence of a deployment', session: 'The signed-in principal',
  deploymentAction: 'Stop, start, restart, kill, pause, resume or remove a deployment\'s app', containerAction: 'A lifecycle action on one container of a host',
  createPromotion: 'Open the promotion pull request of a live deployment', listVsas: 'Deploy VSAs of an image', deployerKey: 'The key deploy VSAs are signed with',
  dashboard: 'The dashboard', loginIssuers: 'Sign-in issuers', login: 'Start sign-in', loginCallback: 'Sign-in callback', logout: 'Sign out',
  createLoginLink: 'Create a one-time dashboard sign-in link', listApiKeys: 'List API keys', createApiKey: 'Create an API key', revokeApiKey: 'Revoke an API key', loginLink: 'Open a one-time sign-in link', loginLinkUse: 'Sign in with a one-time link',
};

/**
 * Operations not authenticated by the bearer scheme, and what authenticates them instead; `[]`
 * declares an operation deliberately public (probes, metadata, the enrollment token in the body,
 * the host channel's own signed handshake, the 405 answers, the sign-in pages).
 */
const OTHER_SECURITY: Record<string, Record<string, string[]>[]> = {
  health: [], ready: [], metrics: [], openapi: [], protectedResource: [], protectedResourceMcp: [], mcpStream: [], mcpSession: [],
  enrollHost: [], hostChannel: [], dashboard: [], loginIssuers: [], login: [], loginCallback: [], loginLink: [], loginLinkUse: [],
  githubWebhook: [{ githubSignature: [] }], gitlabWebhook: [{ gitlabToken: [] }], downloadBundle: [{ hostSignature: [] }],
};

/** Fills every operation's summary and declares its security (bearer unless listed above). */
function described<T extends { paths: object }>(doc: T): T {
  const paths = Object.fromEntries(Object.entries(doc.paths).map(([path, item]) => [path, Object.fromEntries(Object.entries(item as Record<string, { operationId: string }>).map(([method, op]) => [
    method, { summary: SUMMARIES[op.operationId], security: OTHER_SECURITY[op.operationId] ?? secured, ...op },
  ]))]));
  return { ...doc, paths };
}

/** The OpenAPI 3.1 description served at /openapi.json; tests check it against the routes and Redocly's recommended rules. */
export const OPENAPI = described({
  openapi: '3.1.0',
  info: { title: 'Cerro Torre deploy server', version: '0.1.0', description: 'Deploys verified .ctp bundles to runtime hosts.', license: { name: 'Apache-2.0', identifier: 'Apache-2.0' } },
  servers: [{ url: '/', description: 'this deploy server' }],
  components: {
    securitySchemes: {
      bearer: { type: 'http', scheme: 'bearer', description: 'API key (ctk_…) or CI OIDC JWT; the dashboard uses its session cookie (__Host-ct_session) plus X-CSRF-Token on state-changing requests' },
      githubSignature: { type: 'apiKey', in: 'header', name: 'X-Hub-Signature-256', description: 'HMAC-SHA256 of the raw body with a configured GitHub webhook secret' },
      gitlabToken: { type: 'apiKey', in: 'header', name: 'X-Gitlab-Token', description: 'a configured GitLab webhook token' },
      hostSignature: { type: 'apiKey', in: 'header', name: 'X-Ct-Signature', description: 'the enrolled host\'s signature over method, path and X-Ct-Time (with X-Ct-Host)' },
    },
    schemas: {
      Error: {
        type: 'object', required: ['error'],
        properties: { error: { type: 'object', required: ['code', 'id', 'message', 'details'], properties: { code: { type: 'string' }, id: { type: 'string' }, message: { type: 'string' }, details: { type: 'object' } } } },
      },
    },
  },
  paths: {
    '/healthz': { get: { operationId: 'health', responses: { '200': json({ type: 'object' }) } } },
    '/readyz': { get: { operationId: 'ready', responses: { '200': json({ type: 'object' }), '503': json({ type: 'object' }, 'not ready') } } },
    '/metrics': { get: { operationId: 'metrics', responses: { '200': { description: 'Prometheus text format' } } } },
    '/openapi.json': { get: { operationId: 'openapi', responses: { '200': json({ type: 'object' }) } } },
    '/webhooks/github': { post: { operationId: 'githubWebhook', description: 'X-Hub-Signature-256 signed GitHub deliveries', responses: { '200': json({ type: 'object' }, 'duplicate'), '202': json({ type: 'object' }, 'accepted or ignored'), ...errors(400, 401, 413) } } },
    '/webhooks/gitlab': { post: { operationId: 'gitlabWebhook', description: 'X-Gitlab-Token authenticated GitLab deliveries', responses: { '200': json({ type: 'object' }), '202': json({ type: 'object' }), ...errors(400, 401, 413) } } },
    '/api/v1/deployments': {
      get: { operationId: 'listDeployments', security: secured, description: 'deployments newest first, a page at a time (`next`: pass it as `before`; a malformed `before` or a `limit` below 1 is 400, one above 500 is read as 500); format=evidence: the live deployment of each environment and app with its evidence', parameters: [{ name: 'environment', in: 'query', schema: name }, { name: 'app', in: 'query', schema: name }, { name: 'status', in: 'query', schema: { enum: [...DEPLOY_STATUSES] } }, { name: 'imageDigest', in: 'query', schema: { type: 'string', pattern: '^sha256:[0-9a-f]{64}$' } }, { name: 'format', in: 'query', schema: { enum: ['evidence'] } }, ...page(500)], responses: { '200': json({ type: 'object' }), ...errors(400, 401, 403) } },
      post: { operationId: 'createDeployment', security: secured, requestBody: body('createDeployment'), responses: { '200': json({ type: 'object' }, 'already exists'), '202': json({ type: 'object' }, 'queued'), ...errors(400, 401, 403) } },
    },
    '/api/v1/deployments/{id}': { get: { operationId: 'getDeployment', security: secured, parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { '200': json({ type: 'object' }), ...errors(401, 403, 404) } } },
    '/api/v1/deployments/{id}/rollback': { post: { operationId: 'rollbackDeployment', security: secured, parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { '202': json({ type: 'object' }), ...errors(401, 403, 404, 409) } } },
    '/api/v1/deployments/{id}/actions': { post: { operationId: 'deploymentAction', description: 'stop, start, restart, kill (signal), pause, resume or remove the app of a deployment on every host that runs it (operators and admins; audited)', parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], requestBody: body('containerAction'), responses: { '200': json({ type: 'object' }, 'per-host results'), ...errors(400, 401, 403, 404, 409, 502, 503) } } },
    '/api/v1/hosts/{id}/containers/{container}/actions': { post: { operationId: 'containerAction', description: 'one lifecycle action on one container of one host (operators and admins; audited)', parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }, { name: 'container', in: 'path', required: true, schema: { type: 'string' } }], requestBody: body('containerAction'), responses: { '200': json({ type: 'object' }), ...errors(400, 401, 403, 404, 409, 502, 503) } } },
    '/api/v1/verify': { post: { operationId: 'verify', security: secured, requestBody: body('verify'), responses: { '200': json({ type: 'object' }), ...errors(400, 401, 403, 404) } } },
    '/api/v1/policies': { get: { operationId: 'listPolicies', security: secured, responses: { '200': json({ type: 'object' }), ...errors(401, 403) } } },
    '/api/v1/policies/impact': { post: { operationId: 'policyImpact', security: secured, description: 'which live deployments a proposed policy change would deny or allow', requestBody: body('policyImpact'), responses: { '200': json({ type: 'object' }), ...errors(400, 401, 403, 409, 422, 429, 503) } } },
    '/api/v1/policies/reload': { post: { operationId: 'reloadPolicies', security: secured, responses: { '200': json({ type: 'object' }), '422': json({ type: 'object' }), ...errors(401, 403) } } },
    '/api/v1/hosts': { get: { operationId: 'listHosts', security: secured, responses: { '200': json({ type: 'object' }), ...errors(401, 403) } } },
    '/api/v1/hosts/{id}': { delete: { operationId: 'removeHost', security: secured, description: 'decommissions a host for good, by id or name (admins; audited as host.removed): its key no longer opens the channel or downloads bundles, its live channel is closed, deploys waiting for it stop waiting and are judged on the remaining hosts, and its name may be enrolled again. A UUID-shaped ref is an id only, never a name. 204 also when it was removed before', parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', maxLength: 63 } }], responses: { '204': { description: 'removed' }, ...errors(401, 403, 404) } } },
    '/api/v1/hosts/tokens': { post: { operationId: 'createEnrollmentToken', security: secured, requestBody: body('createEnrollmentToken'), responses: { '201': json({ type: 'object' }), ...errors(400, 401, 403) } } },
    '/api/v1/hosts/enroll': { post: { operationId: 'enrollHost', requestBody: body('enrollHost'), responses: { '201': json({ type: 'object' }), ...errors(400, 401, 409) } } },
    '/api/v1/hosts/{id}/logs': { get: { operationId: 'containerLogs', security: secured, parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }, { name: 'container', in: 'query', required: true, schema: { type: 'string' } }, { name: 'maxBytes', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1048576 } }, { name: 'follow', in: 'query', schema: { type: 'string', enum: ['1', 'true'] } }], responses: { '200': json({ type: 'object' }), ...errors(400, 401, 403, 404, 429, 503) } } },
    '/api/v1/hosts/bundles/{digest}': { get: { operationId: 'downloadBundle', description: 'host-signed (x-ct-host, x-ct-time, x-ct-signature); only bundles assigned to that host', parameters: [{ name: 'digest', in: 'path', required: true, schema: { type: 'string' } }], responses: { '200': { description: '.ctp bytes' }, ...errors(400, 401, 403, 404) } } },
    '/api/v1/hosts/channel': { get: { operationId: 'hostChannel', description: 'WebSocket upgrade: the signed host channel (docs/host-protocol.md)', parameters: [{ name: 'host', in: 'query', required: true, schema: { type: 'string' } }], responses: { '101': { description: 'switching protocols' } } } },
    '/api/v1/drift': { get: { operationId: 'drift', security: secured, description: 'hosts\' reported containers against the desired state: `drift`, `suspended`, and `undeclared` (live apps the desired state in force no longer declares: removed or renamed there, or deployed by the API; nothing stops them); `inSync` is false while either list has an entry', responses: { '200': json({ type: 'object' }), ...errors(401, 403) } } },
    '/api/v1/audit': {
      get: {
        operationId: 'searchAudit', security: secured, description: 'audit records, newest first, a page at a time (auditors and admins): `next` is the cursor of the page (pass it as `before`), `truncated` says a `q` search read its 10,000 records before it found `limit` matches (more may follow `next`); format=jsonl exports JSON lines, with `next` and `truncated` in the CT-Next and CT-Truncated headers',
        parameters: [{ name: 'kind', in: 'query', schema: { type: 'string' } }, { name: 'subject', in: 'query', schema: { type: 'string' } }, { name: 'since', in: 'query', schema: { type: 'string' } }, { name: 'until', in: 'query', schema: { type: 'string' } }, { name: 'q', in: 'query', schema: { type: 'string', maxLength: 200 } }, ...page(1000), { name: 'format', in: 'query', schema: { enum: ['json', 'jsonl'] } }],
        responses: {
          '200': json({ type: 'object', required: ['entries', 'next', 'truncated'], properties: { entries: { type: 'array', items: { type: 'object' } }, next: { type: ['string', 'null'] }, truncated: { type: 'boolean' } } }),
          ...errors(400, 401, 403),
        },
      },
    },
    '/api/v1/sync': {
      get: {
        operationId: 'syncStatus', security: secured, description: 'the desired-state commit in force (`applied`) and the last reconcile (`last`: its commit, `outcome` such as `applied`, `up-to-date` or `refused:INVALID_STATE`, and `message`, the file:line:column of a YAML error); every role',
        responses: { '200': json({ type: 'object', required: ['configured', 'applied', 'last'], properties: { configured: { type: 'boolean' }, applied: { type: ['object', 'null'] }, last: { type: ['object', 'null'] } } }), ...errors(401, 403) },
      },
      post: { operationId: 'sync', security: secured, description: 'reconcile the desired state now (operators and admins)', responses: { '202': json({ type: 'object' }), ...errors(401, 403) } } },
    '/mcp': {
      post: { operationId: 'mcp', security: secured, description: 'Model Context Protocol (Streamable HTTP, stateless JSON responses): tools for agents (docs/mcp.md)', responses: { '200': json({ type: 'object' }, 'JSON-RPC response'), '202': { description: 'notification accepted' }, ...errors(400, 401, 403, 413) } },
      get: { operationId: 'mcpStream', description: 'not offered: the server is stateless (405)', responses: { '405': json({ type: 'object' }) } },
      delete: { operationId: 'mcpSession', description: 'not offered: the server is stateless (405)', responses: { '405': json({ type: 'object' }) } },
    },
    '/.well-known/oauth-protected-resource': { get: { operationId: 'protectedResource', description: 'OAuth 2.0 protected resource metadata (RFC 9728) of /mcp', responses: { '200': json({ type: 'object' }) } } },
    '/.well-known/oauth-protected-resource/mcp': { get: { operationId: 'protectedResourceMcp', description: 'OAuth 2.0 protected resource metadata (RFC 9728) of /mcp', responses: { '200': json({ type: 'object' }) } } },
    '/api/v1/overview': { get: { operationId: 'overview', security: secured, description: 'environments × apps grid, a page of apps at a time (limit, after, q; a limit that is not a whole number from 1 is 400)', parameters: [page(500)[0]], responses: { '200': json({ type: 'object' }), ...errors(400, 401, 403) } } },
    '/api/v1/deployments/{id}/evidence': { get: { operationId: 'deploymentEvidence', security: secured, parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { '200': json({ type: 'object' }), ...errors(401, 403, 404) } } },
    '/api/v1/session': { get: { operationId: 'session', security: secured, description: 'who is signed in, their role and (dashboard sessions) the CSRF token', responses: { '200': json({ type: 'object' }), ...errors(401) } } },
    '/': { get: { operationId: 'dashboard', description: 'the dashboard (static files under /ui/)', responses: { '200': { description: 'text/html' } } } },
    '/auth/issuers': { get: { operationId: 'loginIssuers', responses: { '200': json({ type: 'object' }) } } },
    '/auth/login': { get: { operationId: 'login', description: 'starts OpenID Connect sign-in (authorization code + PKCE)', parameters: [{ name: 'issuer', in: 'query', schema: { type: 'integer' } }, { name: 'returnTo', in: 'query', schema: { type: 'string' } }], responses: { '302': { description: 'to the issuer' }, '404': { description: 'no such issuer' } } } },
    '/auth/callback': { get: { operationId: 'loginCallback', responses: { '302': { description: 'signed in' }, '401': { description: 'refused' }, '403': { description: 'no role' } } } },
    '/api/v1/login-links': { post: { operationId: 'createLoginLink', security: secured, description: 'a one-time dashboard sign-in link (admins; 10 minutes, used once)', requestBody: body('createLoginLink'), responses: { '201': json({ type: 'object' }), ...errors(400, 401, 403) } } },
    '/auth/link': {
      get: { operationId: 'loginLink', description: 'the page a one-time link opens: a Sign in button that posts the token (uses nothing, reads nothing: a link scanner\'s GET or HEAD leaves the link usable)', parameters: [{ name: 'token', in: 'query', required: true, schema: { type: 'string' } }], responses: { '200': { description: 'text/html' }, '401': { description: 'malformed token' } } },
      post: { operationId: 'loginLinkUse', description: 'signs in with a one-time link (form field token; Sec-Fetch-Site same-origin, or an Origin of this server, when a browser sends one) and opens the dashboard', requestBody: { required: true, content: { 'application/x-www-form-urlencoded': { schema: { type: 'object', required: ['token'], properties: { token: { type: 'string' } } } } } }, responses: { '303': { description: 'signed in, to the dashboard' }, '401': { description: 'unknown, expired or used link' }, '403': { description: 'posted by another site\'s page' } } },
    },
    '/auth/logout': { post: { operationId: 'logout', security: secured, description: 'needs X-CSRF-Token', responses: { '204': { description: 'signed out' }, ...errors(401, 403) } } },
    '/api/v1/promotions': { post: { operationId: 'createPromotion', description: 'opens or updates the pull / merge request pinning, in environment `to`, the bundle the live deployment of `app` in `from` runs, with its evidence (operators and admins; audited)', requestBody: body('createPromotion'), responses: { '200': json({ type: 'object' }, 'opened, updated or unchanged'), ...errors(400, 401, 403, 404, 422, 502, 503) } } },
    '/api/v1/vsas': { get: { operationId: 'listVsas', description: 'the deploy VSAs (canonical DSSE envelopes) this server signed for an image, newest first', parameters: [{ name: 'imageDigest', in: 'query', required: true, schema: { type: 'string', pattern: '^sha256:[0-9a-f]{64}$' } }, { name: 'bundleDigest', in: 'query', schema: { type: 'string', pattern: '^sha256:[0-9a-f]{64}$' } }, { name: 'environment', in: 'query', schema: name }, ...page(64)], responses: { '200': json({ type: 'object' }), ...errors(400, 401, 403) } } },
    '/api/v1/deployer': { get: { operationId: 'deployerKey', description: 'key id and public key (SPKI, base64) deploy VSAs are signed with: list it in the role deployers', responses: { '200': json({ type: 'object' }), ...errors(401, 403) } } },
    '/api/v1/api-keys': {
      get: { operationId: 'listApiKeys', security: secured, description: 'API keys newest first, never their secrets (admins)', parameters: [page(1000)[0]], responses: { '200': json({ type: 'object' }), ...errors(400, 401, 403) } },
      post: { operationId: 'createApiKey', security: secured, description: 'a new API key with a role, shown once (admins; audited; 90 days unless ttlSeconds, at most 366 days; one minted by a dashboard sign-in ends no later than that session, one minted by an API key no later than that key: see expiresAt)', requestBody: body('createApiKey'), responses: { '201': json({ type: 'object' }), ...errors(400, 401, 403, 409) } },
    },
    '/api/v1/api-keys/{id}': { delete: { operationId: 'revokeApiKey', security: secured, description: 'revokes an API key for good, and the keys it minted (admins; audited)', parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { '204': { description: 'revoked' }, ...errors(401, 403, 404) } } },
    '/api/v1/events': { get: { operationId: 'events', security: secured, description: 'server-sent events; at most events.perPrincipal (8) streams per principal and events.maxStreams (256) in all: past either 429 EVENT_STREAM_LIMIT with Retry-After', responses: { '200': { description: 'text/event-stream' }, ...errors(401, 403, 429) } } },
  },
} as const);

const ajv = new Ajv2020({ allErrors: true, strict: false });
const validators = new Map(Object.entries(REQUEST_SCHEMAS).map(([op, s]) => [op, ajv.compile(s)]));

/**
 * Whether a request carries a body. As type-is's hasBody, except that `content-length: 0` (what
 * fetch and many clients send with a bodiless POST) is no body: nothing was sent to be misread.
 */
function hasBody(req: Request): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length.trim() !== '0');
}

/** Validates a JSON request body against its operation's schema; 400 with every problem listed. */
export function validateBody(operationId: keyof typeof REQUEST_SCHEMAS & string) {
  const v = validators.get(operationId);
  if (!v) throw new Error(`no schema for ${operationId}`);
  return (req: Request, res: Response, next: NextFunction): void => {
    if (req.body === undefined) {
      // The JSON parser ran on nothing. A body of another type (curl -d sends
      // application/x-www-form-urlencoded) is refused, not taken for `{}`: its fields would be
      // silently replaced by the defaults (an admin asking for a viewer link got an operator one).
      if (hasBody(req)) return sendError(res, 415, 'UNSUPPORTED_MEDIA_TYPE', 'the request body must be JSON (content-type: application/json)');
      // Truly no body: validated as `{}`, and handled as `{}` (an optional body, e.g. login links).
      req.body = {};
    }
    if (v(req.body)) return next();
    sendError(res, 400, 'BAD_REQUEST', `request body does not match ${operationId}`, {
      errors: (v.errors ?? []).slice(0, 20).map((e) => ({ path: e.instancePath || '/', message: e.message })),
    });
  };
}
