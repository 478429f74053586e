import { Ajv, type ValidateFunction } from 'ajv';
import { CtError } from '../../src/core/errors.js';

/**
 * Drives a Vörðr host through its JSON-RPC 2.0 API (SPEC §8): `POST /` with `tools/list` and
 * `tools/call {name, arguments}`; results are plain JSON objects. Vörðr does not publish its
 * tools' argument names beyond what `tools/list` advertises, so the adapter reads each tool's
 * `inputSchema` (MCP convention) and checks arguments against it before sending anything: a call
 * the remote would misread never leaves this host.
 *
 * This is an adapter to somebody else's runtime, not a replacement for RuncRuntime: what Vörðr
 * enforces (seccomp, AppArmor) is what it says, not what we measured.
 */
export interface VordrTool {
  name: string;
  description?: string;
  inputSchema?: Record<string, unknown>;
}

export const VORDR_TOOLS = [
  'vordr_container_create', 'vordr_container_start', 'vordr_container_stop', 'vordr_container_remove',
  'vordr_container_list', 'vordr_container_inspect', 'vordr_verify_image', 'vordr_run', 'vordr_ps',
] as const;

interface RpcResponse {
  jsonrpc?: string;
  id?: unknown;
  result?: unknown;
  error?: { code?: number; message?: string; data?: unknown };
}

export class VordrClient {
  private readonly url: string;
  private readonly timeoutMs: number;
  private nextId = 1;
  private tools?: Map<string, { tool: VordrTool; validate?: ValidateFunction }>;
  private readonly ajv = new Ajv({ allErrors: true, strict: false });

  constructor(url: string, opts: { timeoutMs?: number } = {}) {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new CtError('USAGE', `Vörðr URL must be http(s): ${url}`, { url });
    this.url = u.href;
    this.timeoutMs = opts.timeoutMs ?? 10000;
  }

  private async rpc(method: string, params?: unknown): Promise<unknown> {
    const id = this.nextId++;
    let res: Response;
    try {
      res = await fetch(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      throw new CtError('NETWORK_ERROR', `Vörðr ${this.url}: ${(e as Error).message}`, { url: this.url }, { cause: e });
    }
    const text = await res.text();
    let body: RpcResponse;
    try {
      body = JSON.parse(text) as RpcResponse;
    } catch {
      throw new CtError('NETWORK_ERROR', `Vörðr ${this.url}: HTTP ${res.status}, not a JSON-RPC response`, { url: this.url, status: res.status });
    }
    if (body?.jsonrpc !== '2.0' || body.id !== id) {
      throw new CtError('NETWORK_ERROR', `Vörðr ${this.url}: response does not answer request ${id}`, { url: this.url });
    }
    if (body.error) {
      throw new CtError('RUNTIME_FAILED', `Vörðr ${method}: ${body.error.message ?? 'error'} (${body.error.code ?? '?'})`, {
        rpcCode: body.error.code, data: body.error.data,
      });
    }
    return body.result;
  }

  /** The tools the host offers (cached), with their argument schemas compiled. */
  async listTools(): Promise<VordrTool[]> {
    if (!this.tools) {
      const result = (await this.rpc('tools/list')) as { tools?: unknown };
      if (!result || !Array.isArray(result.tools)) throw new CtError('NETWORK_ERROR', 'Vörðr tools/list: no tools array', {});
      const map = new Map<string, { tool: VordrTool; validate?: ValidateFunction }>();
      for (const t of result.tools as VordrTool[]) {
        if (!t || typeof t.name !== 'string') continue;
        let validate: ValidateFunction | undefined;
        if (t.inputSchema && typeof t.inputSchema === 'object') {
          try {
            validate = this.ajv.compile(t.inputSchema);
          } catch {
            validate = undefined; // an unusable schema checks nothing; the remote still validates
          }
        }
        map.set(t.name, { tool: t, validate });
      }
      this.tools = map;
    }
    return [...this.tools.values()].map((t) => t.tool);
  }

  /** Calls a tool after checking its arguments against the advertised schema. */
  async call(name: string, args: Record<string, unknown> = {}): Promise<unknown> {
    await this.listTools();
    const entry = this.tools!.get(name);
    if (!entry) throw new CtError('USAGE', `Vörðr host offers no tool ${name}`, { tool: name });
    if (entry.validate && !entry.validate(args)) {
      const problems = (entry.validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? 'invalid'}`);
      throw new CtError('USAGE', `${name}: arguments do not match the tool's schema: ${problems.join('; ')}`, { tool: name, problems });
    }
    return this.rpc('tools/call', { name, arguments: args });
  }

  create(args: Record<string, unknown>): Promise<unknown> {
    return this.call('vordr_container_create', args);
  }
  start(args: Record<string, unknown>): Promise<unknown> {
    return this.call('vordr_container_start', args);
  }
  stop(args: Record<string, unknown>): Promise<unknown> {
    return this.call('vordr_container_stop', args);
  }
  remove(args: Record<string, unknown>): Promise<unknown> {
    return this.call('vordr_container_remove', args);
  }
  list(args: Record<string, unknown> = {}): Promise<unknown> {
    return this.call('vordr_container_list', args);
  }
  inspect(args: Record<string, unknown>): Promise<unknown> {
    return this.call('vordr_container_inspect', args);
  }
}
