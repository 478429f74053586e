import { CtError } from './errors.js';

/** The longest delay a Node timer keeps (2^31 - 1 ms, about 24.8 days): a longer one fires at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A `--timeout` value in milliseconds, from whole `unit`s: a positive integer no longer than a
 * timer can wait. Past that Node would fire the timer after 1 ms, so a generous timeout would
 * time out every request at once; such a value is USAGE instead.
 */
export function timeoutOption(v: string, flag = '--timeout', unit: 'ms' | 's' = 'ms'): number {
  const n = /^\d{1,16}$/.test(v) ? Number(v) : NaN;
  const ms = unit === 's' ? n * 1000 : n;
  if (!(ms >= 1 && ms <= MAX_TIMER_MS)) {
    const most = unit === 's' ? Math.floor(MAX_TIMER_MS / 1000) : MAX_TIMER_MS;
    throw new CtError('USAGE', `${flag}: not a whole number of ${unit === 's' ? 'seconds' : 'milliseconds'} from 1 to ${most}: ${v.slice(0, 40)}`, { option: flag });
  }
  return ms;
}
