import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { CtError, boundDetails, boundText } from '../src/core/errors.js';

/** Errors in Svalinn's shape: `{error: {code, id, message, details}}`; `id` ties a reply to the log. */
export class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly details: Record<string, unknown> = {}) {
    super(message);
  }
}

const STATUS_BY_CODE: Record<string, number> = {
  MALFORMED_BUNDLE: 400,
  JSON_INVALID: 400,
  USAGE: 400,
  REFERENCE_INVALID: 400,
  REGISTRY_NOT_ALLOWED: 403,
  NO_POLICY: 403,
  NETWORK_ERROR: 502,
  REGISTRY_ERROR: 502,
  REGISTRY_NOT_FOUND: 404,
};

/**
 * 4xx errors raised by middleware rather than our code (serve-static, body-parser): their messages
 * are not ours to pass on (serve-static's 404 is `ENOENT: …, stat '<install path>/…'`), so each
 * status answers a fixed code and message. Other 4xx statuses answer BAD_REQUEST.
 */
const CLIENT_ERRORS: Record<number, { code: string; message: string }> = {
  400: { code: 'BAD_REQUEST', message: 'bad request' },
  403: { code: 'FORBIDDEN', message: 'forbidden' },
  404: { code: 'NOT_FOUND', message: 'not found' },
  405: { code: 'METHOD_NOT_ALLOWED', message: 'method not allowed' },
  412: { code: 'PRECONDITION_FAILED', message: 'precondition failed' },
  413: { code: 'PAYLOAD_TOO_LARGE', message: 'request body too large' },
  415: { code: 'UNSUPPORTED_MEDIA_TYPE', message: 'unsupported content type, encoding or charset' },
  416: { code: 'RANGE_NOT_SATISFIABLE', message: 'range not satisfiable' },
};

export function sendError(res: Response, status: number, code: string, message: string, details: Record<string, unknown> = {}): void {
  const id = randomUUID();
  // Bounded whatever produced them: no input may turn into a megabyte-long answer.
  res.status(status).json({ error: { code, id, message: boundText(message), details: boundDetails(details) } });
}

/** Last express middleware: nothing an attacker sends may crash the server or leak a stack. */
export function errorHandler(log: { error: (o: object, m: string) => void }) {
  return (err: unknown, _req: Request, res: Response, _next: NextFunction): void => {
    if (res.headersSent) return;
    if (err instanceof HttpError) return sendError(res, err.status, err.code, err.message, err.details);
    if (err instanceof CtError) return sendError(res, STATUS_BY_CODE[err.code] ?? 422, err.code, err.message, err.details);
    const e = err as { type?: string; status?: number; message?: string };
    if (e?.type === 'entity.too.large') return sendError(res, 413, 'PAYLOAD_TOO_LARGE', 'request body too large');
    if (e?.type === 'entity.parse.failed') return sendError(res, 400, 'JSON_INVALID', 'request body is not valid JSON');
    if (e?.status && e.status >= 400 && e.status < 500) {
      const known = CLIENT_ERRORS[e.status] ?? { code: 'BAD_REQUEST', message: 'bad request' };
      return sendError(res, e.status, known.code, known.message);
    }
    log.error({ err }, 'unhandled error');
    sendError(res, 500, 'INTERNAL', 'internal error');
  };
}
