/** How failures reach users (annotations, statuses, summaries): `CODE: message`, secrets removed. */
import { CtError } from '../../src/core/errors.js';

export function describeError(e: unknown): { code: string; message: string } {
  if (e instanceof CtError) return { code: e.code, message: e.message };
  return { code: 'ERROR', message: (e as Error)?.message ?? String(e) };
}

/** Replaces every secret value in a text: a belt to the runner's masking braces. */
export function scrub(text: string, secrets: string[]): string {
  let out = text;
  for (const s of secrets) if (s.length >= 4) out = out.split(s).join('***');
  return out;
}
