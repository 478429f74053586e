/**
 * `/mcp`: the deploy server as an MCP server (Streamable HTTP, stateless: one McpServer and
 * transport per request, as the SDK recommends for servers behind load balancers and replicas).
 * It is an OAuth 2.0 resource server in the MCP authorization spec's sense: bearer tokens only
 * (API keys and OIDC JWTs, never a dashboard cookie, so a browser page cannot ride a session),
 * protected-resource metadata (RFC 9728) and `401` with `WWW-Authenticate` pointing at it.
 * Tools call the REST API with the caller's own token, so roles are exactly the API's, and every
 * tool call is audited with the principal and the tool's name.
 */
import express, { Router, type Request, type Response } from 'express';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { ServerContext } from '../context.js';
import { authenticateBearer } from '../auth/middleware.js';
import { can } from '../auth/principal.js';
import { sendError } from '../http-error.js';
import { actor, recordAudit } from '../audit.js';
import { ApiClient } from '../../src/mcp/api-client.js';
import { serverTools } from '../../src/mcp/server-tools.js';
import { answerCode, createMcpServer, visibleTools } from '../../src/mcp/create-server.js';
import type { ToolDef } from '../../src/mcp/tool.js';
import { AlertBudget } from '../channel/alert-budget.js';
import { sameOriginRequest } from '../ui/origin.js';

const METADATA_PATH = '/.well-known/oauth-protected-resource/mcp';
const VERSION = '0.1.0';
/**
 * Tool calls one request may carry. Answering in JSON, the SDK keeps every answer of a batch until
 * the last is ready: a batch of 100 calls each answering megabytes held hundreds of MiB.
 */
const MAX_CALLS_PER_BATCH = 16;
/** Bytes the answers of one request may hold together (see createMcpServer's maxOutputBytes). */
const MAX_OUTPUT_BYTES = 16 * 1024 * 1024;
/**
 * Refused tool calls (unknown tool, arguments off the schema, a batch too large) each principal
 * may have written to the audit log at once, and how fast that comes back: mcp.tool records are
 * kept for good, and a read-only key could otherwise write 16 a request as fast as it can send
 * (burying the log). Past it a refusal is still answered, not written; the excess is summarised
 * (REFUSALS_NOT_RECORDED with the count) once the principal's minute has passed, and when the
 * server stops, so every refusal is either written or counted. Calls that ran are always written.
 */
export const REFUSAL_BUDGET = { burst: 240, perSecond: 0.2, maxBytes: Infinity, summaryEveryMs: 60_000 };

export interface McpRouteOptions {
  /** The server's own listening URL: where tools send their API calls (never taken from a request header). */
  apiBase: () => string | undefined;
  /** Tools besides the API's (e.g. promotion), given the caller's API client. */
  extraTools?: (api: ApiClient) => ToolDef[];
  /** The refusal budget (REFUSAL_BUDGET): tests sum up over milliseconds, not minutes. */
  refusalBudget?: typeof REFUSAL_BUDGET;
}

/** The `/mcp` routes, and `close`: the refusal counts not yet written are, before the database closes. */
export function mcpRoutes(ctx: ServerContext, opts: McpRouteOptions): { router: Router; close: () => Promise<void> } {
  const r = Router();
  const summaries = new Set<Promise<void>>();
  // Each count past the budget is written once the principal's window passed (a timer, or the
  // server's stop): written only at the next refusal, a burst shorter than the window left all but one uncounted.
  const refusals = new AlertBudget(Date.now, opts.refusalBudget ?? REFUSAL_BUDGET, (key, dropped) => {
    const who = JSON.parse(key) as ReturnType<typeof actor>;
    ctx.log.warn({ principal: who, dropped }, 'refused MCP tool calls not written to the audit log: over the principal\'s budget');
    const write = recordAudit(ctx.db, 'mcp.tool', null, { principal: who, tool: null, kind: null, ok: false, code: 'REFUSALS_NOT_RECORDED', dropped, arguments: [], ms: 0 })
      .catch((e: unknown) => ctx.log.error({ err: e, principal: who, dropped }, 'refused MCP tool calls: the count could not be written'))
      .finally(() => summaries.delete(write));
    summaries.add(write);
  });
  /** Writes a refused call's record within the principal's budget; past it, it is counted (above). */
  const recordRefusal = async (who: ReturnType<typeof actor>, subject: string | null, record: Record<string, unknown>) => {
    // The key is the principal's record itself: the count's summary names it.
    if (refusals.admit(JSON.stringify(who), 0)) return recordAudit(ctx.db, 'mcp.tool', subject, record);
  };
  const publicBase = () => (ctx.config.publicUrl ?? opts.apiBase() ?? '').replace(/\/$/, '');
  const metadata = (_req: Request, res: Response) =>
    void res.json({
      resource: `${publicBase()}/mcp`,
      authorization_servers: [...new Set(ctx.config.oidc.map((o) => o.issuer))],
      bearer_methods_supported: ['header'],
      resource_name: 'Cerro Torre deploy server',
      resource_documentation: 'https://github.com/cerro-torre/cerro-torre/blob/main/docs/mcp.md',
    });
  r.get(METADATA_PATH, metadata);
  r.get('/.well-known/oauth-protected-resource', metadata);

  // The largest request /mcp takes: policy_impact's description says it (an agent cannot foresee a bare 413).
  const maxRequestBytes = Math.min(ctx.config.maxBodyBytes, 1024 * 1024);
  const json = express.json({ limit: maxRequestBytes, strict: true });
  r.post('/mcp', async (req: Request, res: Response, next) => {
    if (ctx.config.mcp?.enabled === false) return sendError(res, 404, 'NOT_FOUND', 'MCP is disabled on this server');
    // The MCP transport spec: an Origin that is not this server's is refused (403). Agents send none;
    // a page of another site (or one reached by DNS rebinding, once publicUrl names this server)
    // has no business calling tools, even with a token it was handed.
    if (!sameOriginRequest(ctx, req)) return sendError(res, 403, 'FORBIDDEN_ORIGIN', 'this request came from another site\'s page (Origin): MCP clients send no Origin, or this server\'s own');
    // Authenticate before the body is parsed.
    const auth = await authenticateBearer(ctx.db, ctx.oidc, req.headers.authorization);
    if (!auth.ok) {
      // RFC 6750 §3.1: a request that carried no credentials gets the challenge without an error code;
      // the description keeps to the characters §3 allows (the reason may quote a token's own claims).
      const error = req.headers.authorization ? `, error="invalid_token", error_description="${auth.reason.replace(/[^\x20-\x7e]|["\\]/g, ' ').slice(0, 200)}"` : '';
      res.setHeader('WWW-Authenticate', `Bearer resource_metadata="${publicBase()}${METADATA_PATH}"${error}`);
      return sendError(res, 401, 'UNAUTHENTICATED', auth.reason);
    }
    if (!can(auth.principal, 'read')) return sendError(res, 403, 'FORBIDDEN', `role ${auth.principal.role} may not use MCP`);
    const base = opts.apiBase();
    if (!base) return sendError(res, 503, 'NOT_READY', 'the server is not listening yet');
    json(req, res, async (err?: unknown) => {
      if (err) return next(err);
      // Answers are matched to calls by id (the audit of refusals below too): with two requests under
      // one id, a refused call could be recorded as the other, or not at all.
      if (hasDuplicateIds(req.body)) return void res.status(400).json({ jsonrpc: '2.0', error: { code: -32600, message: 'Invalid Request: request ids must be unique within a batch' }, id: null });
      const calls = Array.isArray(req.body) ? req.body.filter((m) => isObj(m) && m.method === 'tools/call').length : 0;
      if (calls > MAX_CALLS_PER_BATCH) {
        // Refused whole, before any tool is asked, and on record: who sent how many.
        try {
          await recordRefusal(actor(auth.principal), null, { principal: actor(auth.principal), tool: null, kind: null, ok: false, code: 'BATCH_TOO_LARGE', calls, arguments: [], ms: 0 });
        } catch (e) {
          return next(e);
        }
        return void res.status(400).json({ jsonrpc: '2.0', error: { code: -32600, message: `Invalid Request: at most ${MAX_CALLS_PER_BATCH} tools/call requests in one batch (${calls} sent)` }, id: null });
      }
      // A client that goes away ends its tools' API calls, queued or running: nobody reads the answers.
      const gone = new AbortController();
      const api = new ApiClient(base, auth.token, { signal: gone.signal });
      const tools = [...serverTools(api, { maxRequestBytes }), ...(opts.extraTools?.(api) ?? [])];
      const who = actor(auth.principal);
      const readOnly = ctx.config.mcp?.readOnly ?? false;
      // Calls the SDK refuses before any tool runs (unknown or hidden tool, arguments that do not
      // match the schema) never reach onCall: they are audited as their answer goes out.
      const asked = toolCallsOf(req.body);
      const audited = new Set<string | number>();
      const server = createMcpServer(tools, {
        name: 'cerro-torre',
        version: VERSION,
        readOnly,
        maxOutputBytes: MAX_OUTPUT_BYTES,
        onCall: (c) => {
          if (c.requestId !== undefined) audited.add(c.requestId);
          return recordAudit(ctx.db, 'mcp.tool', c.tool, { principal: who, tool: c.tool, kind: c.kind, ok: c.ok, code: c.code ?? null, arguments: c.arguments, ms: c.ms });
        },
      });
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
      const visible = new Map(visibleTools(tools, readOnly).map((t) => [t.name, t.kind]));
      const known = new Set(tools.map((t) => t.name));
      const send = transport.send.bind(transport);
      transport.send = async (message, options) => {
        const id = (message as { id?: unknown }).id;
        const call = typeof id === 'string' || typeof id === 'number' ? asked.get(id) : undefined;
        if (call && !audited.has(id as string | number)) {
          audited.add(id as string | number);
          const kind = visible.get(call.tool) ?? null;
          // The code is the one the answer carries (createMcpServer wrote it): the record says what the agent was told.
          const code = answerCode(message) ?? 'INTERNAL';
          // The subject is what the audit is searched and a decision's trail is gathered by: a name
          // the caller made up (another deployment's id, an instruction to an auditor's agent) is
          // kept inside the record only.
          await recordRefusal(who, known.has(call.tool) ? call.tool : null, { principal: who, tool: call.tool, kind, ok: false, code, arguments: call.arguments, ms: 0 });
        }
        return send(message, options);
      };
      res.on('close', () => {
        gone.abort();
        void transport.close();
        void server.close();
      });
      try {
        await server.connect(transport);
        await transport.handleRequest(req, res, req.body);
      } catch (e) {
        next(e);
      }
    });
  });
  // Stateless: no server-initiated stream and no session to delete.
  const notAllowed = (_req: Request, res: Response) => void res.setHeader('Allow', 'POST').status(405).json({ jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed.' }, id: null });
  r.get('/mcp', notAllowed);
  r.delete('/mcp', notAllowed);
  return {
    router: r,
    close: async () => {
      refusals.close();
      await Promise.all([...summaries]);
    },
  };
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Whether a JSON-RPC batch holds two requests with the same id. */
function hasDuplicateIds(body: unknown): boolean {
  if (!Array.isArray(body)) return false;
  const seen = new Set<unknown>();
  for (const m of body) {
    if (!isObj(m) || typeof m.method !== 'string' || (typeof m.id !== 'string' && typeof m.id !== 'number')) continue;
    if (seen.has(m.id)) return true;
    seen.add(m.id);
  }
  return false;
}

/** The tools/call requests of a JSON-RPC message (or batch) by id: tool name and argument names, bounded. */
function toolCallsOf(body: unknown): Map<string | number, { tool: string; arguments: string[] }> {
  const out = new Map<string | number, { tool: string; arguments: string[] }>();
  for (const m of (Array.isArray(body) ? body : [body]).slice(0, 100)) {
    if (!isObj(m) || m.method !== 'tools/call' || (typeof m.id !== 'string' && typeof m.id !== 'number')) continue;
    const p = isObj(m.params) ? m.params : {};
    const args = isObj(p.arguments) ? Object.keys(p.arguments).slice(0, 50).map((k) => k.slice(0, 64)).sort() : [];
    out.set(m.id, { tool: typeof p.name === 'string' ? p.name.slice(0, 100) : '', arguments: args });
  }
  return out;
}
