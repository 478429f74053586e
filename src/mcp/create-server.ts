/**
 * An MCP server (the official SDK's McpServer) over a list of tool definitions: read-only mode
 * leaves the act tools out entirely (not listed, not callable), every call is reported to
 * `onCall` (the deploy server audits it), and failures come back as tool errors with a stable code,
 * never as stack traces.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { CallToolRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { toolFailure, type ToolDef } from './tool.js';
import { UNTRUSTED_NOTE, untrusted, untrustedJson } from './untrusted.js';

export interface CallRecord {
  tool: string;
  kind: ToolDef['kind'];
  ok: boolean;
  code?: string;
  /** Argument names (values may be large or sensitive: policy texts, log selectors). */
  arguments: string[];
  ms: number;
  /** The JSON-RPC id of the tools/call request (the deploy server matches refusals by it). */
  requestId?: string | number;
}

export interface McpOptions {
  name: string;
  version: string;
  readOnly?: boolean;
  onCall?: (c: CallRecord) => Promise<void> | void;
  /**
   * Bytes all this server's tool answers may hold together. The deploy server builds one server per
   * HTTP request and, answering in JSON, keeps every answer of a batch until the last is ready: past
   * this, a call is answered RESPONSE_TOO_LARGE instead of being kept.
   */
  maxOutputBytes?: number;
}

/**
 * A refusal as the agent reads it: the code is the tool's (validated), the message may quote a
 * host, a bundle (a symlink's target) or the API relaying either, so it is data; so are its
 * details (a proposed policy's compile issues quote the policy text), bounded.
 */
export function errorText(f: { code: string; message: string; details?: Record<string, unknown> }): string {
  return JSON.stringify({ code: f.code, message: untrusted('error message', f.message, 1000), ...(f.details ? { details: untrustedJson('error details', f.details, 16384) } : {}) });
}

/** The stable code of a refusal the SDK wrote (its messages, @modelcontextprotocol/sdk server/mcp.js). */
function sdkRefusalCode(message: string): string {
  if (/^MCP error -32602: Tool .* (not found|disabled)$/s.test(message)) return 'UNKNOWN_TOOL';
  if (/^MCP error -32602: (Input validation error|Invalid arguments for tool)/.test(message)) return 'INVALID_ARGUMENTS';
  return 'INTERNAL';
}

/** A refused call's answer: a tool error carrying {code, message} (errorText). */
const refusal = (code: string, message: string) => ({ isError: true, content: [{ type: 'text' as const, text: errorText({ code, message }) }] });

/**
 * The code of an answer to a tools/call, as the agent reads it: a refusal's code (every refusal,
 * the SDK's included, is written by errorText), undefined for a result; a bare JSON-RPC error
 * INTERNAL. The deploy server audits a call refused before any tool ran with this code, so the
 * record says what the agent was told.
 */
export function answerCode(message: unknown): string | undefined {
  const m = message as { result?: { isError?: unknown; content?: Array<{ text?: unknown }> }; error?: unknown };
  if (m?.error !== undefined) return 'INTERNAL';
  const text = m?.result?.isError === true ? m.result.content?.[0]?.text : undefined;
  if (typeof text !== 'string') return undefined;
  try {
    const code = (JSON.parse(text) as { code?: unknown }).code;
    return typeof code === 'string' ? code : 'INTERNAL';
  } catch {
    return 'INTERNAL';
  }
}

type RequestHandler = (request: { params?: unknown }, extra: unknown) => Promise<unknown>;

export function visibleTools(tools: readonly ToolDef[], readOnly = false): ToolDef[] {
  return tools.filter((t) => !readOnly || t.kind === 'read');
}

export function createMcpServer(tools: readonly ToolDef[], opts: McpOptions): McpServer {
  let spent = 0;
  const server = new McpServer(
    { name: opts.name, version: opts.version },
    { instructions: `Cerro Torre: verified deployments, their evidence and policy decisions. ${UNTRUSTED_NOTE}` },
  );
  // Calls the SDK refuses before any tool runs (no such tool, arguments off the schema) answered its
  // bare "MCP error -32602: …" text, not the {code, message} every other refusal is: an agent
  // parsing the answer got no code. The message quotes the call (a tool name, an argument): data.
  (server as unknown as { createToolError: (message: string) => unknown }).createToolError = (message: string) => refusal(sdkRefusalCode(message), message.replace(/^MCP error -?\d+: /, ''));
  for (const t of visibleTools(tools, opts.readOnly)) {
    server.registerTool(
      t.name,
      {
        title: t.title,
        description: `${t.description}${t.kind === 'act' ? ' Changes what runs.' : ''}`,
        // Strict: an argument the tool does not take is refused (INVALID_ARGUMENTS), not dropped: a
        // misspelt filter (`application` for `app`) answered every deployment as if they matched.
        inputSchema: z.object(t.input).strict(),
        // Outputs name the fields clients can rely on and may carry more (passthrough).
        outputSchema: z.object(t.output).passthrough(),
        annotations: { title: t.title, readOnlyHint: t.kind === 'read', destructiveHint: t.kind === 'act', idempotentHint: t.kind === 'read', openWorldHint: false },
      },
      async (args: Record<string, unknown>, extra: { requestId?: string | number }) => {
        const started = Date.now();
        const record = (ok: boolean, code?: string) => opts.onCall?.({ tool: t.name, kind: t.kind, ok, code, arguments: Object.keys(args ?? {}).sort(), ms: Date.now() - started, requestId: extra?.requestId });
        try {
          const out = await t.run(args ?? {});
          const text = JSON.stringify(out);
          // Held twice until sent: as text and as structured content.
          const size = 2 * Buffer.byteLength(text);
          if (opts.maxOutputBytes !== undefined && spent + size > opts.maxOutputBytes) {
            await record(false, 'RESPONSE_TOO_LARGE');
            return { isError: true, content: [{ type: 'text' as const, text: errorText({ code: 'RESPONSE_TOO_LARGE', message: `the answers of this request would exceed ${opts.maxOutputBytes} bytes: ask for less (a lower limit) or in separate requests` }) }] };
          }
          spent += size;
          await record(true);
          return { content: [{ type: 'text' as const, text }], structuredContent: out };
        } catch (e) {
          const f = toolFailure(e);
          await record(false, f.code);
          return { isError: true, content: [{ type: 'text' as const, text: errorText(f) }] };
        }
      },
    );
  }
  // A call whose params the SDK's own schema of tools/call refuses (arguments an array or null, a
  // name not a string, any other field off it, such as `task: 5`) failed the SDK's parse of the
  // request before its handler ran: a JSON-RPC -32603 "Internal error" with the parser's dump. It
  // is a call with bad arguments, refused like the others: judged by that same schema, so every
  // field it checks is covered. The SDK keeps its handlers in a private map: should a release
  // rename it, the calls go to the SDK's handler unchanged (test/mcp/mcp-hostile.test.ts fails).
  const handlers = (server.server as unknown as { _requestHandlers?: unknown })._requestHandlers;
  const call = handlers instanceof Map ? (handlers.get('tools/call') as RequestHandler | undefined) : undefined;
  if (call && handlers instanceof Map) {
    const visible = new Set(visibleTools(tools, opts.readOnly).map((t) => t.name));
    handlers.set('tools/call', async (request: Parameters<RequestHandler>[0], extra: Parameters<RequestHandler>[1]) => {
      const parsed = CallToolRequestSchema.safeParse(request);
      if (parsed.success) return call(request, extra);
      const p = request.params as { name?: unknown; arguments?: unknown } | undefined;
      const name = typeof p?.name === 'string' ? p.name : undefined;
      const args = p?.arguments;
      if (name === undefined) return refusal('UNKNOWN_TOOL', 'a tools/call names its tool: params.name, a string');
      if (!visible.has(name)) return refusal('UNKNOWN_TOOL', `Tool ${name} not found`);
      const argsOk = args === undefined || (typeof args === 'object' && args !== null && !Array.isArray(args));
      if (!argsOk) return refusal('INVALID_ARGUMENTS', `Tool ${name}: arguments must be an object of named arguments (got ${args === null ? 'null' : Array.isArray(args) ? 'an array' : typeof args})`);
      const where = parsed.error.issues[0]?.path.map(String).join('.').slice(0, 100) || 'params';
      return refusal('INVALID_ARGUMENTS', `Tool ${name}: ${where} is not what a tools/call carries (the MCP schema)`);
    });
  }
  return server;
}
