import { CtError } from '../core/errors.js';

/** A size with an optional k/m suffix (powers of 1024), as `--log-max-size` takes it. */
export function parseSize(v: string): number {
  const m = /^(\d{1,9})([kKmM]?)$/.exec(v.trim());
  if (!m) throw new CtError('USAGE', `${JSON.stringify(v.slice(0, 32))} is not a size such as 10m or 512k`, {});
  return Number(m[1]) * (m[2] === '' ? 1 : m[2].toLowerCase() === 'k' ? 1024 : 1024 * 1024);
}

/** `--log-max-size` / `--log-max-files` of `ct run` and `ct host run` (the runtime checks the bounds). */
export function logLimitsFrom(size: string | undefined, files: string | undefined): { maxBytes: number; files: number } {
  const n = Number(files ?? '2');
  if (!Number.isInteger(n)) throw new CtError('USAGE', '--log-max-files must be an integer', {});
  return { maxBytes: parseSize(size ?? '10m'), files: n };
}
