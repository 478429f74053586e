/**
 * Reading an HTTP answer body (a Node stream or a WHATWG stream, both async iterable) that a
 * remote sends unauthenticated: within a byte limit, the stream dropped (not read to its end) as
 * soon as the limit is passed.
 */
import { CtError } from './errors.js';
import type { ErrorCode } from './codes.js';

export type Body = AsyncIterable<Buffer | Uint8Array> & { destroy?: (e?: Error) => unknown };

/** The body's bytes, refused with `code` once past `max` (the rest is not read). */
export async function readBounded(body: Body, max: number, what: string, code: ErrorCode): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += c.length;
    if (n > max) {
      body.destroy?.();
      throw new CtError(code, `${what}: answer longer than ${max} bytes`, { limit: max });
    }
    parts.push(Buffer.from(c));
  }
  return Buffer.concat(parts);
}

/** At most `max` bytes of the body as text (error answers: only a prefix is shown); the rest is dropped. */
export async function readPrefix(body: Body, max = 500): Promise<string> {
  const parts: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of body) {
      parts.push(Buffer.from(c));
      n += c.length;
      if (n >= max) break; // leaving the loop destroys the stream
    }
  } catch {
    // An error body that fails to arrive is shown as what arrived.
  }
  body.destroy?.();
  return Buffer.concat(parts).subarray(0, max).toString('utf8');
}
