import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Db } from '../store/db.js';
import { bearerToken } from '../auth/middleware.js';
import { can } from '../auth/principal.js';
import { tokenCacheFor } from '../auth/token-cache.js';
import { parseJsonBody } from './json-body.js';
import { MAX_KEY_BYTES, type VerdictCache } from './verdict-cache.js';

/** The request's body bytes (latin1, one char per byte) when the hot path read it: the cache key. */
export const RAW_BODY = Symbol('ct.verify.rawBody');
/** Why the body the hot path read is not JSON: the route answers it as express.json would. */
export const BODY_ERROR = Symbol('ct.verify.bodyError');

export type HotRequest = IncomingMessage & { body?: unknown; [RAW_BODY]?: string; [BODY_ERROR]?: unknown };

const ROUTE = '/api/v1/verify';
const JSON_TYPES = new Set(['application/json', 'application/json; charset=utf-8', 'application/json;charset=utf-8']);
const LENGTH = /^[0-9]{1,4}$/;

/**
 * The cached `/api/v1/verify`, answered before express: a client calling it in a loop (an
 * admission controller, a CI fleet) gets the stored answer for the same request bytes at the cost
 * of one map lookup, instead of the router, helmet, body-parser, the schema and the policy engine.
 *
 * Taken only when everything is plain: POST to exactly the route, a small `application/json`
 * body with a Content-Length and no Content-Encoding, and a Bearer token that authenticated
 * within the last seconds (server/auth/token-cache.ts) with the `verify` permission. Anything else
 * (and every cache miss) goes to express unchanged, where the route authenticates, validates,
 * decides and stores the answer. Authentication comes before the body is read.
 */
export function verifyHotPath(db: Db, cache: VerdictCache, onHit: () => void) {
  const tokens = tokenCacheFor(db);
  return (req: IncomingMessage, res: ServerResponse, next: () => void): void => {
    let taken = false;
    try {
      taken = take(req, res, next);
    } catch {
      // Nothing here may take the server down: express answers (or its error handler does).
      taken = false;
    }
    if (!taken) next();
  };

  /** False: not for the hot path (express answers). True: the hot path owns the request now. */
  function take(req: IncomingMessage, res: ServerResponse, next: () => void): boolean {
    if (req.method !== 'POST' || req.url !== ROUTE) return false;
    const h = req.headers;
    const type = h['content-type'];
    const length = h['content-length'];
    if (type === undefined || length === undefined || !LENGTH.test(length) || Number(length) > MAX_KEY_BYTES) return false;
    if (h['content-encoding'] !== undefined || h['transfer-encoding'] !== undefined || !JSON_TYPES.has(type.toLowerCase())) return false;
    const token = bearerToken(h.authorization);
    const principal = token === undefined ? undefined : tokens.get(token);
    if (!principal || !can(principal, 'verify')) return false;
    readBody(req as HotRequest, (body) => {
      const r = req as HotRequest;
      const key = body.toString('latin1');
      try {
        const hit = cache.get(key);
        if (hit) {
          onHit();
          res.writeHead(200, hit.headers);
          res.end(hit.body);
          return;
        }
      } catch (e) {
        // Answered by express's error handler (a 500 with an id, logged), never a crash.
        if (res.headersSent) return void res.destroy();
        r[BODY_ERROR] = e;
        return next();
      }
      // A miss: the route answers. The body is consumed here, so it is parsed here, exactly as
      // express.json would (which skips a request already read); errors are the route's to send.
      r[RAW_BODY] = key;
      try {
        r.body = parseJsonBody(body);
      } catch (e) {
        r[BODY_ERROR] = e;
      }
      next();
    });
    return true;
  }
}

/** The whole body (Content-Length bytes, at most MAX_KEY_BYTES): one chunk is used as it is. */
function readBody(req: HotRequest, done: (body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let finished = false;
  const onData = (c: Buffer) => {
    size += c.length;
    // The HTTP parser delivers at most Content-Length bytes; this holds even if it did not.
    if (size > MAX_KEY_BYTES) return fail();
    chunks.push(c);
  };
  const cleanup = () => {
    finished = true;
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('error', fail);
    req.off('close', onClose);
  };
  const onEnd = () => {
    if (finished) return;
    cleanup();
    done(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
  };
  // The client went away (or sent too much): nobody is left to answer.
  function fail() {
    if (finished) return;
    cleanup();
    req.destroy();
  }
  const onClose = () => fail();
  req.on('data', onData);
  req.on('end', onEnd);
  req.on('error', fail);
  req.on('close', onClose);
}
