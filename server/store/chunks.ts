/**
 * Statements of a batch name at most this many rows, padded to a power of two by repeating the
 * last (harmless in `IN (…)` and under ON CONFLICT DO NOTHING): a handful of statement texts, each
 * compiled once (server/store/sqlite.ts), whatever the size of the fleet.
 */
export const CHUNK = 128;

export function chunks<T>(items: T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += CHUNK) {
    const c = items.slice(i, i + CHUNK);
    let size = 1;
    while (size < c.length) size *= 2;
    while (c.length < size) c.push(c[c.length - 1]);
    out.push(c);
  }
  return out;
}

/**
 * `one, one, …` (`n` of them, comma-separated): the placeholders of a chunk's statement, by a loop
 * rather than a closure made per statement (server/channel/within.ts says why).
 */
export function placeholders(n: number, one = '?'): string {
  let out = '';
  for (let i = 0; i < n; i++) out += i === 0 ? one : `, ${one}`;
  return out;
}
