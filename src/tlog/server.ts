import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CtError, asIoError, isCtError } from '../core/errors.js';
import { isDigest } from '../core/digest.js';
import { spkiBase64 } from '../trust/keyid.js';
import { LogApi, type LogApiOptions } from './log-api.js';
import { SqliteLogStore } from './store.js';

export interface LogServerOptions extends LogApiOptions {
  /** SQLite file holding the log. */
  db: string;
  port?: number;
  host?: string;
  /** Log key; or `keyFile` (PKCS#8 PEM or DER, unencrypted). Default: the key kept in the db. */
  privateKey?: KeyObject;
  keyFile?: string;
  logId?: string;
  origin?: string;
  operator?: string;
  /** Largest accepted request body (default 64 KiB); larger bodies get 413. */
  maxBodyBytes?: number;
}

export interface LogServer {
  url: string;
  logId: string;
  origin: string;
  operator: string;
  /** base64 SPKI DER, the form trust stores hold. */
  publicKey: string;
  api: LogApi;
  close(): Promise<void>;
}

/** HTTP status of each error code the log reports. */
const STATUS: Record<string, number> = {
  JSON_INVALID: 400,
  LOG_ENTRY_INVALID: 400,
  USAGE: 400,
};

class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

function send(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = type === 'application/json' ? JSON.stringify(body) : String(body);
  res.writeHead(status, { 'content-type': `${type}; charset=utf-8`, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(new HttpError(413, 'LOG_ENTRY_INVALID', `request body of ${declared} bytes exceeds the limit of ${limit} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let total = 0;
    req.on('data', (c: Buffer) => {
      total += c.length;
      if (total > limit) {
        req.removeAllListeners('data');
        req.pause();
        reject(new HttpError(413, 'LOG_ENTRY_INVALID', `request body exceeds the limit of ${limit} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Parses a query integer strictly: decimal digits only, no sign, no exponent. */
function intParam(url: URL, name: string, required: boolean): number | undefined {
  const v = url.searchParams.get(name);
  if (v === null) {
    if (required) throw new HttpError(400, 'USAGE', `query parameter ${name} is required`);
    return undefined;
  }
  if (!/^(0|[1-9][0-9]{0,15})$/.test(v) || !Number.isSafeInteger(Number(v))) throw new HttpError(400, 'USAGE', `query parameter ${name} must be a non-negative integer`);
  return Number(v);
}

async function route(api: LogApi, req: IncomingMessage, res: ServerResponse, maxBody: number): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://log.invalid');
  const path = url.pathname;
  const method = req.method ?? 'GET';
  if (path === '/api/v1/entries' && method === 'POST') {
    const raw = await readBody(req, maxBody);
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new HttpError(400, 'JSON_INVALID', 'request body is not JSON');
    }
    return send(res, 201, await api.submit(body));
  }
  if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, 'USAGE', `${method} is not allowed on ${path}`);
  if (path === '/api/v1/proof') return send(res, 200, api.proof(intParam(url, 'logIndex', true)!, intParam(url, 'treeSize', false)));
  if (path === '/api/v1/sth') return send(res, 200, api.sth());
  if (path === '/api/v1/checkpoint') return send(res, 200, api.checkpoint(), 'text/plain');
  if (path === '/api/v1/consistency') return send(res, 200, api.consistency(intParam(url, 'first', true)!, intParam(url, 'second', false)));
  if (path === '/api/v1/revocations') {
    const digest = url.searchParams.get('digest') ?? undefined;
    if (digest !== undefined && !isDigest(digest)) throw new HttpError(400, 'USAGE', 'query parameter digest must be sha256:<64 lower-case hex>');
    return send(res, 200, api.revocations(digest));
  }
  const m = /^\/api\/v1\/entries\/([^/]+)$/.exec(path);
  if (m) {
    if (!/^(0|[1-9][0-9]{0,15})$/.test(m[1])) throw new HttpError(400, 'USAGE', 'entry index must be a non-negative integer');
    const index = Number(m[1]);
    if (index >= api.store.size) throw new HttpError(404, 'USAGE', `no entry ${index}: the log holds ${api.store.size}`);
    return send(res, 200, api.entry(index));
  }
  throw new HttpError(404, 'USAGE', `no such endpoint: ${method} ${path}`);
}

function loadKey(opts: LogServerOptions): KeyObject | undefined {
  if (opts.privateKey) return opts.privateKey;
  if (!opts.keyFile) return undefined;
  let data: Buffer;
  try {
    data = readFileSync(opts.keyFile);
  } catch (e) {
    throw asIoError(e, opts.keyFile);
  }
  try {
    const text = data.toString('utf8');
    return text.includes('-----BEGIN') ? createPrivateKey(text) : createPrivateKey({ key: data, format: 'der', type: 'pkcs8' });
  } catch (e) {
    throw new CtError('KEY_INVALID', `${opts.keyFile}: not an unencrypted PKCS#8 private key (${(e as Error).message})`, { path: opts.keyFile }, { cause: e });
  }
}

/**
 * Starts a VCS transparency log on node:http (the append path is small and hot; a framework adds
 * nothing here). Resolves once listening; `close()` stops accepting, drops idle keep-alive
 * connections and closes the database.
 */
export async function startLogServer(opts: LogServerOptions): Promise<LogServer> {
  const store = SqliteLogStore.open(opts.db, { privateKey: loadKey(opts), logId: opts.logId, origin: opts.origin, operator: opts.operator });
  const api = new LogApi(store, opts);
  const maxBody = opts.maxBodyBytes ?? 64 * 1024;
  const server = createServer((req, res) => {
    route(api, req, res, maxBody).catch((e: unknown) => {
      let status = 500;
      let code = 'IO_ERROR';
      let message = 'internal error';
      if (e instanceof HttpError) [status, code, message] = [e.status, e.code, e.message];
      else if (isCtError(e)) [status, code, message] = [STATUS[e.code] ?? 500, e.code, e.message];
      if (status === 413) res.setHeader('connection', 'close');
      if (!res.headersSent) send(res, status, { error: { code, message } });
    });
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => {
      store.close();
      reject(asIoError(e, `${opts.host ?? '127.0.0.1'}:${opts.port ?? 0}`));
    });
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}`,
    logId: store.logId,
    origin: store.origin,
    operator: store.operator,
    publicKey: spkiBase64(store.publicKey),
    api,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          store.close();
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}
