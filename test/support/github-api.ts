/**
 * A local stand-in for api.github.com. Every request is matched to an operation of GitHub's
 * published OpenAPI description (@octokit/openapi) and its path parameters, query and JSON body
 * are validated against that operation's schemas; a request the real API would reject is answered
 * 422 and recorded in `errors`. Responses are the description's own recorded examples unless a
 * test supplies one for the operation.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import AjvModule from 'ajv';

const Ajv = AjvModule as unknown as typeof AjvModule.default;
type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface RecordedRequest {
  method: string;
  path: string;
  operationId: string;
  params: Record<string, string>;
  query: Record<string, string>;
  body: Json;
  headers: Record<string, string | string[] | undefined>;
}

export type Responder = (req: RecordedRequest) => { status: number; body?: Json; headers?: Record<string, string> } | undefined;

interface Operation { method: string; template: string; re: RegExp; names: string[]; op: Json }

let spec: Json;
let operations: Operation[];
const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
const validators = new Map<string, ReturnType<typeof ajv.compile>>();

function loadSpec(): void {
  if (spec) return;
  const require = createRequire(import.meta.url);
  const file = require.resolve('@octokit/openapi/generated/api.github.com.json');
  spec = JSON.parse(readFileSync(file, 'utf8'));
  operations = [];
  for (const [template, item] of Object.entries<Json>(spec.paths)) {
    for (const method of ['get', 'post', 'put', 'patch', 'delete']) {
      const op = item[method];
      if (!op) continue;
      const names: string[] = [];
      const params = [...(item.parameters ?? []), ...(op.parameters ?? [])].map(deref);
      const pattern = template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{(\w+)\\?\}/g, (_m, name: string) => {
        names.push(name);
        const multi = params.find((p: Json) => p.name === name && p.in === 'path')?.['x-multi-segment'];
        return multi ? '(.+)' : '([^/]+)';
      });
      operations.push({ method: method.toUpperCase(), template, re: new RegExp(`^${pattern}$`), names, op });
    }
  }
  // Templates with fewer parameters are more specific (`/user/repos` before `/users/{username}`);
  // among equals the longer one is (`/commits/{ref}/statuses` before `/commits/{ref}`, whose
  // multi-segment `ref` would otherwise swallow `…/statuses`).
  operations.sort((a, b) => a.names.length - b.names.length || b.template.length - a.template.length);
}

function deref(v: Json, depth = 0): Json {
  if (depth > 40) return {};
  if (Array.isArray(v)) return v.map((x) => deref(x, depth + 1));
  if (!v || typeof v !== 'object') return v;
  if (typeof v.$ref === 'string') {
    const target = v.$ref.replace(/^#\//, '').split('/').reduce((o: Json, k: string) => o?.[k], spec);
    return deref(target, depth + 1);
  }
  const out: Json = {};
  for (const [k, x] of Object.entries(v)) out[k] = deref(x, depth + 1);
  // OpenAPI 3.0 `nullable` is not JSON Schema: widen the type instead.
  if (out.nullable === true) {
    if (typeof out.type === 'string') out.type = [out.type, 'null'];
    else if (out.enum) out.enum = [...out.enum, null];
    delete out.nullable;
  }
  return out;
}

function validatorFor(key: string, schema: Json): ReturnType<typeof ajv.compile> {
  let v = validators.get(key);
  if (!v) {
    v = ajv.compile(deref(schema));
    validators.set(key, v);
  }
  return v;
}

function exampleResponse(op: Json): { status: number; body?: Json } {
  const [code, resp] = Object.entries<Json>(op.responses).find(([c]) => /^2/.test(c)) ?? ['200', {}];
  const content = deref(resp)?.content?.['application/json'];
  const example = content?.examples ? Object.values<Json>(content.examples)[0]?.value : content?.example;
  return { status: Number(code), body: example };
}

export interface GitHubApi {
  url: string;
  requests: RecordedRequest[];
  errors: string[];
  respond(operationId: string, responder: Responder): void;
  close(): Promise<void>;
}

export async function startGitHubApi(): Promise<GitHubApi> {
  loadSpec();
  const requests: RecordedRequest[] = [];
  const errors: string[] = [];
  const responders = new Map<string, Responder>();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const send = (status: number, body?: Json, headers: Record<string, string> = {}) => {
      res.writeHead(status, { ...headers, 'content-type': 'application/json; charset=utf-8' });
      res.end(body === undefined ? '' : JSON.stringify(body));
    };
    const fail = (message: string) => {
      errors.push(`${req.method} ${url.pathname}: ${message}`);
      send(422, { message, documentation_url: 'https://docs.github.com/rest' });
    };
    const match = operations.find((o) => o.method === req.method && o.re.test(url.pathname));
    if (!match) return fail('no such operation in the OpenAPI description');
    const m = match.re.exec(url.pathname)!;
    const params = Object.fromEntries(match.names.map((n, i) => [n, decodeURIComponent(m[i + 1])]));
    const query = Object.fromEntries(url.searchParams.entries());
    let body: Json;
    if (raw) {
      try { body = JSON.parse(raw); } catch { return fail('body is not JSON'); }
    }
    const opId = match.op.operationId as string;
    const record: RecordedRequest = { method: req.method!, path: url.pathname, operationId: opId, params, query, body, headers: req.headers };

    const declared = [...(spec.paths[match.template].parameters ?? []), ...(match.op.parameters ?? [])].map((p: Json) => deref(p));
    for (const p of declared) {
      const value = p.in === 'path' ? params[p.name] : p.in === 'query' ? query[p.name] : undefined;
      if (p.required && value === undefined && p.in !== 'header') return fail(`missing ${p.in} parameter ${p.name}`);
      if (value !== undefined && p.schema) {
        const typed = p.schema.type === 'integer' || p.schema.type === 'number' ? Number(value) : p.schema.type === 'boolean' ? value === 'true' : value;
        const v = validatorFor(`${opId}:param:${p.name}`, p.schema);
        if (!v(typed)) return fail(`${p.in} parameter ${p.name}: ${ajv.errorsText(v.errors)}`);
      }
    }
    const bodySchema = deref(match.op.requestBody)?.content?.['application/json']?.schema;
    if (match.op.requestBody?.required && body === undefined) return fail('missing request body');
    if (bodySchema && body !== undefined) {
      const v = validatorFor(`${opId}:body`, bodySchema);
      if (!v(body)) return fail(`body: ${ajv.errorsText(v.errors)}`);
    }
    requests.push(record);
    const custom = responders.get(opId)?.(record);
    const out: { status: number; body?: Json; headers?: Record<string, string> } = custom ?? exampleResponse(match.op);
    send(out.status, out.body, out.headers);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e) => {
      errors.push(String(e));
      res.writeHead(500).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    errors,
    respond: (id, fn) => void responders.set(id, fn),
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
