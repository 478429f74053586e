import type { ErrorCode } from './codes.js';

/**
 * The one error class of the library. `code` is stable and closed (see codes.ts); `details`
 * carries what a user needs to act (path, expected, actual). Native `{ cause }` keeps the chain.
 */
export class CtError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CtError';
    this.code = code;
    this.details = details;
  }

  toJSON(): { code: ErrorCode; message: string; details: Record<string, unknown> } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

export function isCtError(e: unknown, code?: ErrorCode): e is CtError {
  return e instanceof CtError && (code === undefined || e.code === code);
}

/** Wraps filesystem failures so that callers still see a stable code. */
export function asIoError(e: unknown, path: string): CtError {
  if (e instanceof CtError) return e;
  const err = e as NodeJS.ErrnoException;
  return new CtError('IO_ERROR', `${path}: ${err?.message ?? String(e)}`, { path, errno: err?.code }, { cause: e });
}
