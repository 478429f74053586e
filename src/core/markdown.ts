/**
 * Text from bundles, policies, servers and commits put into Markdown that GitHub and GitLab render
 * (pull-request bodies and comments, job summaries): one place for the two rules, which four
 * hand-written copies each got partly wrong.
 *
 * - A table row is split at every `|` not escaped, inside code spans too (GFM), and `\\` is an
 *   escaped backslash there: a pipe after an even run of backslashes (none included) still ends
 *   the cell and puts what follows into the table as Markdown (mentions, links, images). Such a
 *   pipe gets one backslash more.
 * - A code span ends at the next backtick: backticks become `'`; a line break would end the row
 *   or the list item: line breaks become spaces.
 *
 * Written by hand: no Markdown library is a dependency, and these two rules are all it takes.
 */

/** `v` as the text of one table cell: one line, no pipe that ends the cell. */
export function tableCell(v: unknown): string {
  return escapePipes(String(v ?? '').replace(/[\r\n]+/g, ' '));
}

/** `v` as a code span (shown as typed, never as Markdown): outside a table. */
export function codeSpan(v: unknown): string {
  return `\`${String(v ?? '').replace(/`/g, "'").replace(/[\r\n]+/g, ' ')}\``;
}

/** `v` as a code span inside a table cell. */
export function cellCode(v: unknown): string {
  return escapePipes(codeSpan(v));
}

function escapePipes(s: string): string {
  return s.replace(/(\\*)\|/g, (m, bs: string) => (bs.length % 2 === 0 ? `${bs}\\|` : m));
}
