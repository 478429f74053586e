/**
 * Newest-first lists a page at a time: `?before=` is the `<created_at>:<id>` of the last row of the
 * previous page, `next` the cursor of this one's (null on the last page). Keyed on (created_at, id),
 * not an offset: rows added meanwhile neither repeat nor skip one.
 */
const BEFORE = /^(\d{1,15}):([\w-]{1,64})$/;

/** The `?before=` cursor, or null (absent or malformed: the first page). */
export function beforeOf(v: unknown): [number, string] | null {
  const m = typeof v === 'string' ? BEFORE.exec(v) : null;
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
