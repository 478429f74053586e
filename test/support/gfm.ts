/**
 * Markdown rendered as GitHub renders it: cmark-gfm (GitHub's own parser; GitLab's comrak follows
 * it) with the table and autolink extensions, raw HTML kept (--unsafe) so that any that got out
 * shows. The Debian package cmark-gfm is in the README's set-up line: missing, this fails loudly.
 */
import { spawnSync } from 'node:child_process';

export function renderGfm(markdown: string): string {
  const r = spawnSync('cmark-gfm', ['-e', 'table', '-e', 'autolink', '--unsafe'], { input: markdown, encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new Error(`cmark-gfm could not render (install the Debian package cmark-gfm): ${r.error?.message ?? r.stderr}`);
  return r.stdout;
}

/** The rendered HTML with every <code>…</code> taken out: what is left is what showed as Markdown. */
export function outsideCode(html: string): string {
  return html.replace(/<code>[\s\S]*?<\/code>/g, '');
}

/** The number of cells of each body row of the rendered tables. */
export function cellsPerRow(html: string): number[] {
  return [...html.matchAll(/<tr>([\s\S]*?)<\/tr>/g)].map((m) => (m[1].match(/<td[ >]/g) ?? []).length).filter((n) => n > 0);
}
