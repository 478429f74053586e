import { readFile } from 'node:fs/promises';
import { CtError, asIoError } from './errors.js';
import type { ErrorCode } from './codes.js';

/**
 * Nesting depth every JSON input may have (objects and arrays). Checked on the text, without
 * recursion, before JSON.parse and before any recursive code (schema validators, canonicalisers,
 * policy evaluation) sees the value: real documents stay below 20.
 */
export const MAX_JSON_DEPTH = 64;

/**
 * The deepest nesting of `text` (brackets outside strings), stopping as soon as `limit` is
 * passed: one linear pass, no recursion, no allocation. A string is skipped with one search for
 * its closing quote (a quote after an odd run of backslashes is escaped) rather than a character
 * loop: most of a signed document's text is base64 inside strings, and the character loop cost as
 * much as the JSON.parse it guards. test/core/json-depth.test.ts checks it against the character
 * loop on random and hostile text.
 */
export function jsonDepthExceeds(text: string | Buffer, limit = MAX_JSON_DEPTH): boolean {
  const s = typeof text === 'string' ? text : text.toString('latin1'); // brackets and quotes are ASCII
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) {
      let end = i;
      for (;;) {
        end = s.indexOf('"', end + 1);
        if (end < 0) return false; // unterminated string: no bracket after it counts (JSON.parse refuses it)
        let k = end - 1;
        while (s.charCodeAt(k) === 0x5c) k--; // stops at the opening quote at the latest
        if ((end - 1 - k) % 2 === 0) break;
      }
      i = end;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

/** Refuses text nested deeper than `limit` with the input's own code (details.limit, details.where). */
export function assertJsonDepth(text: string | Buffer, where: string, code: ErrorCode, limit = MAX_JSON_DEPTH): void {
  if (jsonDepthExceeds(text, limit)) {
    throw new CtError(code, `${where}: JSON nested deeper than ${limit} levels`, { where, limit, reason: 'depth' });
  }
}

/** The same check on an already parsed value (iterative), for values that did not come as text. */
export function valueDepthExceeds(value: unknown, limit = MAX_JSON_DEPTH): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (d > limit) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) if (typeof child === 'object' && child !== null) stack.push([child, d + 1]);
  }
  return false;
}

/** JSON.parse with a stable code, the file named in the message and the depth limit above (or `depth`: a document that nests others). */
export function parseJson(data: Buffer | string, where: string, code: ErrorCode = 'JSON_INVALID', depth = MAX_JSON_DEPTH): unknown {
  const text = typeof data === 'string' ? data : data.toString('utf8');
  assertJsonDepth(text, where, code, depth);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CtError(code, `${where}: not valid JSON (${(e as Error).message.slice(0, 200)})`, { where }, { cause: e });
  }
}

/** Reads and parses a JSON file: IO_ERROR when unreadable, `code` when not JSON. */
export async function readJsonFile(path: string, code: ErrorCode = 'JSON_INVALID'): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw asIoError(e, path);
  }
  return parseJson(text, path, code);
}
