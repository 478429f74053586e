import type { ErrorCode } from './codes.js';

/**
 * Bounds on what an error may carry. Messages and details are built from hostile input (names,
 * parser messages, lists of problems); without a cap one input can turn into a 36 MB message on
 * stdout or in an HTTP answer. Every CtError is bounded where it is built, so no caller can forget.
 */
export const ERROR_LIMITS = {
  /** Characters of `message`. */
  messageChars: 4096,
  /** Characters of all strings and keys in `details` together (a JSON-size budget). */
  detailsChars: 16_384,
  /** Characters of one string inside `details`. */
  stringChars: 1024,
  /** Items of one array (or keys of one object) inside `details`. */
  items: 100,
  /** Nesting inside `details`. */
  depth: 8,
} as const;

/** What replaces the cut part: says that something was cut and how much. */
function marker(cut: number): string {
  return `… [${cut} more characters truncated]`;
}

/**
 * `text` cut to `max` characters with a marker saying how much was left out. A bound too short for
 * the marker and text beside it (under twice the marker) keeps what it can of the text and a bare
 * `…`: the marker alone kept nothing of the text, and was longer than the bound.
 */
export function boundText(text: string, max: number = ERROR_LIMITS.messageChars): string {
  if (text.length <= max) return text;
  if (max < 1) return '';
  const full = marker(text.length - max);
  const m = full.length * 2 <= max ? full : '…';
  let keep = Math.max(0, max - m.length);
  // Never half a surrogate pair: a lone high surrogate is not valid UTF-8 and breaks JSON consumers.
  if (keep > 0 && /[\uD800-\uDBFF]/.test(text[keep - 1])) keep--;
  return text.slice(0, keep) + m;
}

/**
 * A copy of `details` within ERROR_LIMITS: long strings cut with a marker, long arrays and objects
 * cut with a `truncated` note, deep values replaced, everything within one character budget.
 */
export function boundDetails(details: Record<string, unknown>): Record<string, unknown> {
  const budget = { left: ERROR_LIMITS.detailsChars };
  const out = boundValue(details, 0, budget);
  return typeof out === 'object' && out !== null && !Array.isArray(out) ? (out as Record<string, unknown>) : { value: out };
}

function boundValue(v: unknown, depth: number, budget: { left: number }): unknown {
  if (v === null || v === undefined || typeof v === 'boolean') {
    budget.left -= 5;
    return v;
  }
  if (typeof v === 'number' || typeof v === 'bigint') {
    budget.left -= 20;
    return typeof v === 'bigint' ? v.toString() : v;
  }
  if (typeof v === 'string') {
    // At least 80: boundText says how much it cut ('… [N more characters truncated]') from there.
    const s = boundText(v, Math.max(80, Math.min(ERROR_LIMITS.stringChars, budget.left)));
    budget.left -= s.length + 2;
    return s;
  }
  if (typeof v !== 'object') return String(typeof v);
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? 'Invalid Date' : v.toISOString();
  if (Buffer.isBuffer(v) || ArrayBuffer.isView(v)) return `<${(v as ArrayBufferView).byteLength} bytes>`;
  if (depth >= ERROR_LIMITS.depth) return '[nested too deep; truncated]';
  if (Array.isArray(v)) {
    const out: unknown[] = [];
    for (let i = 0; i < v.length; i++) {
      if (i >= ERROR_LIMITS.items || budget.left <= 0) {
        out.push(`[${v.length - i} more items truncated]`);
        break;
      }
      out.push(boundValue(v[i], depth + 1, budget));
    }
    return out;
  }
  const out: Record<string, unknown> = {};
  let n = 0;
  const keys = Object.keys(v);
  for (const k of keys) {
    if (n >= ERROR_LIMITS.items || budget.left <= 0) {
      out.truncated = `${keys.length - n} more fields truncated`;
      break;
    }
    const key = boundText(k, 128);
    budget.left -= key.length + 3;
    Object.defineProperty(out, key, { value: boundValue((v as Record<string, unknown>)[k], depth + 1, budget), enumerable: true, writable: true, configurable: true });
    n++;
  }
  return out;
}

/**
 * The one error class of the library. `code` is stable and closed (see codes.ts); `details`
 * carries what a user needs to act (path, expected, actual). Native `{ cause }` keeps the chain.
 * Message and details are bounded here (ERROR_LIMITS), whatever the caller passed.
 */
export class CtError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(boundText(String(message)), options);
    this.name = 'CtError';
    this.code = code;
    this.details = boundDetails(details);
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
