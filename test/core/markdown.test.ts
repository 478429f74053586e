/**
 * Text from bundles, policies and servers in what GitHub and GitLab render (src/core/markdown.ts):
 * it cannot end a table cell (GFM splits a row at every `|` not escaped by an odd run of
 * backslashes, inside code spans too) nor leave its code span; the verify job summary keeps it so.
 */
import { describe, expect, it } from '@jest/globals';
import { cellCode, codeSpan, tableCell } from '../../src/core/markdown.js';
import { verifySummary } from '../../actions/verify/run.js';

/** A row's cell delimiters as GFM counts them. */
function delimiters(row: string): number {
  let n = 0;
  for (let i = 0; i < row.length; i++) {
    if (row[i] !== '|') continue;
    let bs = 0;
    for (let j = i - 1; j >= 0 && row[j] === '\\'; j--) bs++;
    if (bs % 2 === 0) n++;
  }
  return n;
}

const HOSTILE = 'a | @acme/admins \\| ![p](https://t.example/p.png) \\\\| `x` \n| **ALLOW** |';

describe('markdown for text from outside', () => {
  it('a cell keeps every pipe, after any run of backslashes, inside it; a code span keeps its backticks out', () => {
    for (const v of [HOSTILE, '|', '\\|', '\\\\|', '\\\\\\|', '||']) {
      expect(delimiters(`| ${tableCell(v)} |`)).toBe(2);
      expect(delimiters(`| ${cellCode(v)} |`)).toBe(2);
    }
    const span = codeSpan(HOSTILE);
    expect(span.slice(1, -1)).not.toMatch(/[`\n]/);
    expect(cellCode('a\\|b')).toBe('`a\\|b`');
  });

  it('the verify job summary: a bundle\'s violations, warnings and errors stay in their cells and spans', () => {
    const md = verifySummary({
      ok: false, decision: 'deny', policies: [HOSTILE], signers: [HOSTILE], warnings: [HOSTILE],
      violations: [{ code: 'X', where: HOSTILE, message: HOSTILE }], error: { code: 'E', message: HOSTILE },
    }, { environment: 'production', source: { reference: 'r.example/a@sha256:' + 'a'.repeat(64) } });
    const rows = md.split('\n').filter((l) => l.startsWith('| ') && !/^\| (\||Code \|)/.test(l));
    expect(rows.length).toBeGreaterThanOrEqual(5);
    for (const row of rows) expect([row, delimiters(row)]).toEqual([row, row.startsWith('| `X`') ? 4 : 3]);
    // Outside code spans, no Markdown of the bundle's: the image and the mention are inside spans.
    const outside = md.replace(/`[^`\n]*`/g, '');
    expect(outside).not.toContain('![p]');
    expect(outside).not.toContain('@acme');
  });
});
