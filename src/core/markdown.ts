/**
 * Text from bundles, policies, servers and commits put into Markdown that GitHub and GitLab render
 * (pull-request bodies and comments, job summaries): one place for the two rules (four
 * hand-written copies left bundle text raw in cells, or in code spans a backtick or pipe ended).
 *
 * - A table row is split at every `|` not escaped, inside code spans too (GFM): a pipe in the
 *   text ended the cell (or the code span in it) and put what followed into the table as
 *   Markdown (mentions, links, images). Every pipe gets a backslash: cmark-gfm (GitHub's, and
 *   GitLab's through comrak) reads `\|` as a pipe in the cell whatever comes before it, and shows
 *   the text as it was (test/core/markdown.test.ts renders with cmark-gfm itself).
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
  return s.replace(/\|/g, '\\|');
}
