/**
 * Newest-first lists a page at a time: `?before=` is the `<created_at>:<id>` of the last row of the
 * previous page, `next` the cursor of this one's (null on the last page). Keyed on (created_at, id),
 * not an offset: rows added meanwhile neither repeat nor skip one.
 */
import { PAGE_CURSOR } from '../../src/protocol/page-cursor.js';

/** The `?before=` cursor, or null (absent or malformed: the first page). */
export function beforeOf(v: unknown): [number, string] | null {
  const m = typeof v === 'string' ? PAGE_CURSOR.exec(v) : null;
  return m ? [Number(m[1]), m[2]] : null;
}

/**
 * The `?before=` cursor: null when absent (or empty: a form's blank field), 'bad' when given but
 * malformed (answered 400: a bad cursor read as "the first page" would repeat page one to a client
 * paging on, for ever).
 */
export function cursorOf(v: unknown): [number, string] | null | 'bad' {
  if (v === undefined || v === '') return null;
  return beforeOf(v) ?? 'bad';
}

/** The cursor naming one row (its time and id). */
export const cursorAt = (time: unknown, id: unknown) => `${String(time)}:${String(id)}`;

/** The cursor after `rows` (fetched with LIMIT limit + 1), or null when nothing follows. */
export function nextOf(rows: readonly { created_at?: unknown; id?: unknown }[], limit: number): string | null {
  const last = rows[limit - 1];
  return rows.length > limit ? cursorAt(last.created_at, last.id) : null;
}

/**
 * The `?limit=` of a list: `dflt` when absent, a larger one cut to `max` (asking for more than a
 * page holds is no fault: the client follows `next`), 'bad' (answered 400) when it is not a whole
 * number from 1. One reading for every list, so a script paging one list pages them all.
 */
export function pageLimit(v: unknown, dflt: number, max: number): number | 'bad' {
  if (v === undefined) return dflt;
  // Any run of digits (the request line bounds its length): 10^20 is read as `max` like 501 is.
  if (typeof v !== 'string' || !/^\d+$/.test(v) || Number(v) < 1) return 'bad';
  return Math.min(Number(v), max);
}

/** The 400 message of a bad `?limit=`. */
export const limitMessage = (max: number) => `limit must be a whole number from 1 (at most ${max} are answered)`;
