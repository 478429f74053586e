/**
 * The deploy server's tools: each one a call of the REST API with the caller's credential (see
 * api-client.ts). Read tools for everyone the API lets read; act tools (sync, rollback, stop/start/restart, promote) are
 * refused by the API for roles that may not deploy, and hidden entirely in read-only mode.
 */
import { z } from 'zod';
import type { ApiClient } from './api-client.js';
import { ToolError, type ToolDef } from './tool.js';
import { untrusted, untrustedJson } from './untrusted.js';
import { summariseEvidence } from './evidence-summary.js';
import type { Evidence } from '../verify/evidence.js';
import { errorCode } from '../protocol/error-code.js';
import { NAME } from '../core/name.js';
import { PAGE_CURSOR } from '../protocol/page-cursor.js';
import { DEPLOY_STATUSES } from '../protocol/deploy-status.js';

/** A page's cursor as the API hands it out: passed back as `before`. */
const cursorOf = (next: unknown) => (typeof next === 'string' && PAGE_CURSOR.test(next) ? next : null);
/*
 * Argument types, each a new schema with its description wherever it is used: one schema object
 * used twice in a tool is written as a JSON Schema `$ref` to the first use, which clients that do
 * not resolve references showed the model as a bare, unconstrained argument.
 */
const name = (what: string) => z.string().regex(NAME).describe(`${what} (lower case: letters, digits, '.', '_', '-'; at most 63)`);
const id = (what = 'deployment id (the id list_deployments answers)') => z.string().min(1).max(100).regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]*$/).describe(what);
const digest = (what: string) => z.string().regex(/^sha256:[0-9a-f]{64}$/).describe(`${what} (sha256:<64 hex>)`);
const reference = z.string().max(512).regex(/^[a-z0-9.-]+(?::\d{1,5})?\/[a-z0-9._/-]+(?::[\w.-]{1,128})?@sha256:[0-9a-f]{64}$/).describe('registry reference pinned by digest: registry/repository[:tag]@sha256:<64 hex>');
const limit = (max: number, dflt: number) => z.number().int().min(1).max(max).describe(`how many to answer, 1 to ${max} (default ${dflt})`);
const before = (what: string) => z.string().max(90).regex(PAGE_CURSOR).describe(`the \`next\` of the previous page: ${what}`);
const rows = (shape: z.ZodRawShape) => z.array(z.object(shape).passthrough());
const seg = (s: string) => encodeURIComponent(s);

type Row = Record<string, unknown>;
const isRow = (v: unknown): v is Row => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A decision in brief (src/policy/impact.ts): its reasons quote the bundle and its signers
 * (uncovered file names, predicate values, certificate subjects), so their messages are data.
 */
function summaryView(s: unknown): unknown {
  if (!isRow(s)) return s ?? null;
  return { ...s, reasons: Array.isArray(s.reasons) ? s.reasons.map((r: unknown) => (isRow(r) ? { ...r, message: untrusted('policy reason', r.message, 1024) } : null)) : [] };
}

/** A host as it reported itself: its facts and inventory are whatever the host (or a container on it) wrote. */
function hostView(h: Row) {
  return { ...h, facts: untrustedJson('host facts', h.facts ?? null, 16384), containers: untrustedJson('host inventory', h.containers ?? [], 65536) };
}

/** A decision or host code: a host reports some of them, so one not shaped like a code is not passed on. */
const codeOf = (c: unknown) => (c === null || c === undefined ? null : errorCode(c));

/**
 * A deployment as listed: its message, commit message and author are bundle- or commit-controlled
 * text; its code may be a host's; its host selector is the desired-state repository's text.
 */
function deploymentView(d: Row) {
  return {
    id: d.id, environment: d.environment, app: d.app, status: d.status, code: codeOf(d.reason),
    message: untrusted('deployment message', d.message, 4096), reference: d.reference, imageDigest: d.imageDigest ?? null,
    commit: d.commit, commitAuthor: untrusted('commit author', d.commitAuthor, 256), commitMessage: untrusted('commit message', d.commitMessage, 4096),
    rollbackOf: d.rollbackOf ?? null, hosts: untrustedJson('host selector', d.hosts ?? null, 4096), createdAt: d.createdAt, updatedAt: d.updatedAt,
  };
}

async function findHost(api: ApiClient, host: string): Promise<Row> {
  const { hosts } = (await api.get('/api/v1/hosts')) as { hosts: Row[] };
  const h = hosts.find((x) => x.id === host || x.name === host);
  if (!h) throw new ToolError('NOT_FOUND', `no host ${host}`);
  return h;
}

export interface ServerToolsOptions {
  /**
   * The largest request the deploy server takes, in bytes, where the caller knows it (the server's
   * own /mcp: min(maxBodyBytes, 1 MiB)); `ct mcp` does not, and says so.
   */
  maxRequestBytes?: number;
}

/** What a tool's description says of the request size limit: the real one when known. */
function requestLimit(bytes: number | undefined): string {
  return bytes === undefined ? 'its maxBodyBytes (1,048,576 by default)' : `${bytes.toLocaleString('en-US')} bytes`;
}

export function serverTools(api: ApiClient, opts: ServerToolsOptions = {}): ToolDef[] {
  const deploymentsOut = { deployments: rows({ id: z.string(), environment: z.string(), app: z.string(), status: z.string() }), next: z.string().nullable() };
  return [
    {
      name: 'list_deployments', title: 'List deployments', kind: 'read',
      description: 'Deployments, newest first, optionally of one environment, app or status (queued, verifying, dispatching, succeeded, failed, denied…). A page at a time: pass `next` back as `before` for older deployments (null: no more).',
      input: { environment: name('only this environment').optional(), app: name('only this app').optional(), status: z.enum(DEPLOY_STATUSES).describe('only deployments with this status').optional(), limit: limit(500, 100).optional(), before: before('older deployments').optional() },
      output: deploymentsOut,
      async run(a: { environment?: string; app?: string; status?: string; limit?: number; before?: string }) {
        // Filtered by the API, not here: a page of all deployments may hold none of the app's.
        const out = (await api.get('/api/v1/deployments', { query: { environment: a.environment, app: a.app, status: a.status, limit: a.limit ?? 100, before: a.before } })) as { deployments: Row[]; next?: unknown };
        return { deployments: out.deployments.map(deploymentView), next: cursorOf(out.next) };
      },
    },
    {
      name: 'get_deployment', title: 'Get a deployment with its evidence', kind: 'read',
      description: 'One deployment: status, decision code and message, target hosts, and the verified evidence (signers, transparency-log entries per operator, SLSA builder, covered files).',
      input: { id: id() },
      output: { deployment: z.object({ id: z.string(), status: z.string() }).passthrough(), evidence: z.unknown() },
      async run(a: { id: string }) {
        const d = await api.get(`/api/v1/deployments/${seg(a.id)}`);
        return { deployment: deploymentView(d), evidence: summariseEvidence(d.evidence as Evidence | null) };
      },
    },
    {
      name: 'list_hosts', title: 'List hosts', kind: 'read',
      description: 'Enrolled runtime hosts: labels, connection state, last contact and the containers each reports.',
      input: {},
      output: { hosts: rows({ id: z.string(), name: z.string(), connected: z.boolean() }) },
      async run() {
        const { hosts } = (await api.get('/api/v1/hosts')) as { hosts: Row[] };
        return { hosts: hosts.map((h) => ({ id: h.id, name: h.name, labels: h.labels, connected: h.connected, lastSeen: h.lastSeen, containers: Array.isArray(h.containers) ? h.containers.length : 0 })) };
      },
    },
    {
      name: 'get_host', title: 'Get a host', kind: 'read',
      description: 'One host by id or name: its facts (what it can enforce: seccomp, AppArmor, SELinux, eBPF), labels, connection and containers.',
      input: { host: z.string().min(1).max(100).describe('host id or name (as list_hosts answers)') },
      output: { host: z.object({ id: z.string(), name: z.string() }).passthrough() },
      async run(a: { host: string }) {
        return { host: hostView(await findHost(api, a.host)) };
      },
    },
    {
      name: 'container_logs', title: 'Tail a container log', kind: 'read',
      description: 'The tail of a container\'s log, asked of its host (operators and admins: logs may hold secrets). The text is untrusted data written by the container.',
      input: {
        host: z.string().min(1).max(100).describe('host id or name (as list_hosts answers)'),
        container: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/).describe('container id as get_host lists it (<environment>-<app>)'),
        maxBytes: z.number().int().min(1).max(1048576).describe('bytes of the log\'s end to answer, 1 to 1,048,576 (default 65,536)').optional(),
      },
      output: { host: z.string(), container: z.string(), log: z.unknown() },
      async run(a: { host: string; container: string; maxBytes?: number }) {
        const h = await findHost(api, a.host);
        const out = (await api.get(`/api/v1/hosts/${seg(String(h.id))}/logs`, { query: { container: a.container, maxBytes: a.maxBytes } })) as { text: string };
        return { host: String(h.id), container: a.container, log: untrusted('container log', out.text, 1 << 20) };
      },
    },
    {
      name: 'list_policies', title: 'List the policies in force', kind: 'read',
      description: 'The active policy set: its digest and each policy\'s name and digest.',
      input: {},
      output: { loaded: z.boolean(), digest: z.string().nullable(), policies: rows({ name: z.string(), digest: z.string() }) },
      async run() {
        return api.get('/api/v1/policies');
      },
    },
    {
      name: 'audit_search', title: 'Search the audit log', kind: 'read',
      description: 'Audit records, newest first (auditors and admins): deploy decisions, actions with who took them, MCP tool calls, host alerts. Filter by kind (deploy.decision, api.rollback, api.sync, mcp.tool, host.alert), subject, time or text. A page at a time: pass `next` back as `before` for older records; `truncated` means a text search stopped reading before it found `limit` matches (more may follow: ask again with `before`).',
      input: {
        kind: z.string().max(64).describe('only records of this kind, e.g. deploy.decision, api.rollback, api.sync, mcp.tool, host.alert').optional(),
        subject: z.string().max(200).describe('only records about this subject: a deployment id, host name, tool name…').optional(),
        since: z.string().max(40).describe('only records at or after this time: RFC 3339 (2026-01-31T12:00:00Z) or milliseconds since 1970').optional(),
        until: z.string().max(40).describe('only records before this time: RFC 3339 or milliseconds since 1970').optional(),
        text: z.string().max(200).describe('only records whose text contains this (reads at most 10,000 records a call: see truncated)').optional(),
        before: before('older records').optional(),
        limit: limit(1000, 100).optional(),
      },
      output: { entries: rows({ id: z.string(), time: z.string(), kind: z.string() }), next: z.string().nullable(), truncated: z.boolean() },
      async run(a: { kind?: string; subject?: string; since?: string; until?: string; text?: string; before?: string; limit?: number }) {
        const out = (await api.get('/api/v1/audit', { query: { kind: a.kind, subject: a.subject, since: a.since, until: a.until, q: a.text, before: a.before, limit: a.limit } })) as { entries: Row[]; next?: string | null; truncated?: boolean };
        // Records quote commit messages, bundle names and host events: all of it data. The cursor is
        // the server's own `<time>:<id>`, handed on as it came so the agent can ask for what follows.
        const entries = out.entries.map((e) => ({ id: e.id, time: e.time, kind: e.kind, subject: e.subject, record: untrustedJson('audit record', e.record, 16384) }));
        return { entries, next: cursorOf(out.next), truncated: out.truncated === true };
      },
    },
    {
      name: 'verify_bundle', title: 'Verify a bundle', kind: 'read',
      description: 'Fetch a bundle by registry reference (pinned by digest), or name one this server already holds by image digest, verify it and judge it under the policies of an environment. Deploys nothing.',
      input: {
        reference: reference.optional(),
        digest: digest('image digest of a bundle this server already fetched (instead of reference)').optional(),
        environment: name('environment whose policies judge it (default: default)').optional(),
        policy: z.string().max(200).describe('judge by this one policy (its name, as list_policies answers) instead of all of the environment\'s').optional(),
      },
      output: { decision: z.enum(['ALLOW', 'REJECT']), allow: z.boolean(), code: z.string().nullable().optional() },
      async run(a: { reference?: string; digest?: string; environment?: string; policy?: string }) {
        if (Boolean(a.reference) === Boolean(a.digest)) throw new ToolError('BAD_REQUEST', 'give exactly one of reference or digest');
        const out = await api.post('/api/v1/verify', { body: { ...(a.reference ? { reference: a.reference } : { digest: a.digest }), ...(a.environment ? { environment: a.environment } : {}), ...(a.policy ? { policy: a.policy } : {}) } });
        // Audit-mode warnings quote the bundle as the messages of denials do.
        const warnings = Array.isArray(out.warnings) ? out.warnings.map((w: unknown) => untrusted('policy warning', w, 1024)) : [];
        return { ...out, code: (out.code as string | null) ?? null, message: untrusted('verification message', out.message, 4096), warnings };
      },
    },
    {
      name: 'explain_decision', title: 'Explain a deployment\'s decision', kind: 'read',
      description: 'Why a deployment was allowed or denied: its final code and message, each recorded step of the decision (the trail: auditors and admins; `trailWithheld` says when the credential may not read it), the policies in force now, and whether they would still allow what runs.',
      input: { id: id() },
      output: { deployment: z.string(), status: z.string(), code: z.string().nullable(), allowed: z.boolean(), trail: z.array(z.unknown()), trailWithheld: z.boolean(), current: z.unknown() },
      async run(a: { id: string }) {
        const d = await api.get(`/api/v1/deployments/${seg(a.id)}`);
        let trailWithheld = false;
        const trail = await api.get('/api/v1/audit', { query: { subject: a.id, limit: 50 } }).then((r) => (r.entries as Row[]).map((e) => ({ time: e.time, kind: e.kind, record: untrustedJson('audit record', e.record, 4096) })), (e: unknown) => {
          // Viewers and operators may not read the audit log: the explanation works without it.
          // Said so: an empty trail read as "nothing was recorded" to an agent.
          if (e instanceof ToolError && e.code === 'FORBIDDEN') return (trailWithheld = true), [];
          throw e;
        });
        // The same engine, on the same evidence, under the policies in force now (an empty proposal).
        let current: unknown = null;
        if (d.status === 'succeeded') {
          const impact = await api.post('/api/v1/policies/impact', { body: { files: [], environment: d.environment } });
          current = summaryView((impact.deployments as Row[]).find((x) => x.id === d.id)?.after);
        }
        return {
          deployment: String(d.id), status: String(d.status), code: codeOf(d.reason), allowed: d.status === 'succeeded',
          message: untrusted('decision message', d.message, 4096), trail, trailWithheld, current,
        };
      },
    },
    {
      name: 'policy_impact', title: 'Impact of a policy change', kind: 'read',
      description: 'A proposed change to the policy repository (files added or replaced, files removed) judged against every live deployment: which would now be denied or allowed, and why. Changes nothing.',
      input: {
        files: z.array(z.object({ path: z.string().max(200).describe('path in the policy repository, e.g. production.policy.yaml'), text: z.string().max(262144).describe('the file\'s proposed text, at most 262,144 characters') }).strict()).max(50).describe(`policy files added or replaced, at most 50 ([] for none: the policies in force now); the deploy server takes requests of at most ${requestLimit(opts.maxRequestBytes)}, all files together (larger: HTTP 413 PAYLOAD_TOO_LARGE)`),
        remove: z.array(z.string().max(200)).max(50).describe('paths of policy files removed, at most 50').optional(),
        environment: name('only the live deployments of this environment').optional(),
      },
      output: { counts: z.record(z.string(), z.number()), deployments: z.array(z.unknown()), policies: z.array(z.unknown()) },
      async run(a: { files: { path: string; text: string }[]; remove?: string[]; environment?: string }) {
        const out = await api.post('/api/v1/policies/impact', { body: { files: a.files, ...(a.remove ? { remove: a.remove } : {}), ...(a.environment ? { environment: a.environment } : {}) } });
        const rows = Array.isArray(out.deployments) ? out.deployments : [];
        return { ...out, deployments: rows.map((d: unknown) => (isRow(d) ? { ...d, before: summaryView(d.before), after: summaryView(d.after) } : null)) };
      },
    },
    {
      name: 'inspect_bundle', title: 'Inspect a deployed bundle', kind: 'read',
      description: 'What a bundle this server verified holds, by deployment id or image digest: digests, attestations and their signers, covered files (manifest.toml, security profiles).',
      input: { deployment: id('deployment id (or give digest)').optional(), digest: digest('image digest: the newest deployment of it (or give deployment)').optional() },
      output: { deployment: z.string(), reference: z.string(), evidence: z.unknown() },
      async run(a: { deployment?: string; digest?: string }) {
        if (Boolean(a.deployment) === Boolean(a.digest)) throw new ToolError('BAD_REQUEST', 'give exactly one of deployment or digest');
        let depId = a.deployment;
        if (a.digest) {
          // Asked of the API by digest (an index), not searched in a page of the newest deployments.
          const newest = async (status?: string) => ((await api.get('/api/v1/deployments', { query: { imageDigest: a.digest, status, limit: 1 } })) as { deployments: Row[] }).deployments[0];
          const hit = (await newest('succeeded')) ?? (await newest());
          if (!hit) throw new ToolError('NOT_FOUND', `no deployment of image ${a.digest}`);
          depId = String(hit.id);
        }
        const d = await api.get(`/api/v1/deployments/${seg(depId as string)}`);
        return { deployment: String(d.id), reference: String(d.reference), evidence: summariseEvidence(d.evidence as Evidence | null) };
      },
    },
    {
      name: 'sync', title: 'Sync the desired state now', kind: 'act',
      description: 'Reconcile the desired-state repository now, as a webhook would (operators and admins; audited).',
      input: {},
      output: { queued: z.boolean(), trigger: z.string() },
      async run() {
        return api.post('/api/v1/sync');
      },
    },
    ...(['stop', 'start', 'restart'] as const).map((action): ToolDef => ({
      name: action, title: `${action[0].toUpperCase()}${action.slice(1)} a deployment's container`, kind: 'act',
      description: `${action} the container of a deployment on every host that runs it (operators and admins; audited as container.action). Each host's answer is returned.`,
      input: { id: id() },
      output: {},
      async run(a: { id: string }) {
        const out = await api.post(`/api/v1/deployments/${seg(a.id)}/actions`, { body: { action } });
        // A host's refusal carries the runtime's message: written on the host, so data.
        const results = Array.isArray(out.results) ? out.results.map((r: unknown) => (isRow(r) ? { ...r, ...(r.code !== undefined ? { code: codeOf(r.code) } : {}), message: untrusted('host answer', r.message, 1024) } : null)) : [];
        return { ...out, results };
      },
    })),
    {
      name: 'promote', title: 'Promote an app to another environment', kind: 'act',
      description: 'Open or update the pull / merge request that pins, in environment `to`, the bundle the live deployment of `app` in `from` runs, with its evidence (signers, logs, SBOM and profile differences, where it ran, the policy decision for `to`) and a commit status (operators and admins; audited). Nothing is deployed until a person merges it.',
      input: { app: name('app to promote'), from: name('environment whose live deployment of the app is promoted'), to: name('environment the pull request pins it in') },
      output: { outcome: z.string(), deployment: z.string(), bundle: z.string(), from: z.string(), to: z.string(), app: z.string(), url: z.string().nullable(), number: z.number().nullable(), allowed: z.boolean(), branch: z.string(), file: z.string() },
      async run(a: { app: string; from: string; to: string }) {
        return api.post('/api/v1/promotions', { body: { app: a.app, from: a.from, to: a.to } });
      },
    },
    {
      name: 'rollback', title: 'Roll back a deployment', kind: 'act',
      description: 'Deploy again the last bundle that succeeded before the given deployment, in the same environment (operators and admins; audited). The new deployment goes through verification and policy like any other.',
      input: { id: id() },
      output: { id: z.string(), rollbackOf: z.string(), reference: z.string() },
      async run(a: { id: string }) {
        return api.post(`/api/v1/deployments/${seg(a.id)}/rollback`);
      },
    },
  ];
}
