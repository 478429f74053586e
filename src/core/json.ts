import { readFile } from 'node:fs/promises';
import { CtError, asIoError } from './errors.js';
import type { ErrorCode } from './codes.js';

/** JSON.parse with a stable code and the file named in the message. */
export function parseJson(data: Buffer | string, where: string, code: ErrorCode = 'JSON_INVALID'): unknown {
  const text = typeof data === 'string' ? data : data.toString('utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CtError(code, `${where}: not valid JSON (${(e as Error).message})`, { where }, { cause: e });
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
