import { CtError } from '../core/errors.js';
import type { ErrorCode } from '../core/codes.js';

/** JSON.parse with a stable code and the file named in the message. */
export function parseJson(data: Buffer | string, where: string, code: ErrorCode = 'JSON_INVALID'): unknown {
  const text = typeof data === 'string' ? data : data.toString('utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CtError(code, `${where}: not valid JSON (${(e as Error).message})`, { where }, { cause: e });
  }
}
