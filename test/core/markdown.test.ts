/**
 * Text from bundles, policies and servers in what GitHub and GitLab render (src/core/markdown.ts),
 * rendered by cmark-gfm itself: it stays in its table cell and its code span, and shows as typed.
 */
import { describe, expect, it } from '@jest/globals';
import { cellCode, codeSpan, tableCell } from '../../src/core/markdown.js';
import { verifySummary } from '../../actions/verify/run.js';
import { cellsPerRow, outsideCode, renderGfm } from '../support/gfm.js';

const HOSTILE = 'a | @acme/admins \\| ![p](https://t.example/p.png) \\\\| <img src=x> `x` https://t.example \n| **ALLOW** |';

describe('markdown for text from outside', () => {
  it('a cell and a code span in it keep every pipe, after any run of backslashes, and show the text as typed', () => {
    for (const v of ['a|b', 'a\\|b', 'a\\\\|b', 'a\\\\\\|b', '||']) {
      const html = renderGfm(`| h | h |\n|---|---|\n| ${cellCode(v)} | ${tableCell(v)} |\n`);
      expect([v, cellsPerRow(html)]).toEqual([v, [2]]);
      expect(html).toContain(`<code>${v}</code>`);
    }
  });

  it('hostile text in a cell code span or a code span shows no link, image, mention or HTML', () => {
    const html = renderGfm(`| h |\n|---|\n| ${cellCode(HOSTILE)} |\n\n- ${codeSpan(HOSTILE)}\n`);
    expect(cellsPerRow(html)).toEqual([1]);
    const shown = outsideCode(html);
    for (const s of ['<a ', '<img', '@acme', 'ALLOW']) expect(shown).not.toContain(s);
  });

  it("the verify job summary: a bundle's violations, warnings, signers and errors stay in their cells and spans", () => {
    const html = renderGfm(verifySummary({
      ok: false, decision: 'deny', policies: [HOSTILE], signers: [HOSTILE], warnings: [HOSTILE],
      violations: [{ code: 'X', where: HOSTILE, message: HOSTILE }], error: { code: 'E', message: HOSTILE },
    }, { environment: 'production', source: { reference: 'r.example/a@sha256:' + 'a'.repeat(64) } }));
    expect(cellsPerRow(html)).toEqual([2, 2, 2, 2, 3]);
    const shown = outsideCode(html);
    for (const s of ['<a ', '<img', '@acme', 'ALLOW']) expect(shown).not.toContain(s);
  });
});
