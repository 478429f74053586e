/**
 * The promotion body a reviewer reads (src/promote/body.ts): text from bundles and policies cannot
 * leave its code span, not even in the table, where GitHub and GitLab split a row at every
 * unescaped `|` (code spans included), rendered by cmark-gfm; and the cut to the size limit never splits a character.
 */
import { describe, expect, it } from '@jest/globals';
import { MAX_BODY, renderPromotionBody } from '../../src/promote/body.js';
import type { PromotionEvidence } from '../../src/promote/evidence.js';
import { cellsPerRow, outsideCode, renderGfm } from '../support/gfm.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;
const pin = { environment: 'production', app: 'web', bundle: `registry.example/web@${DIGEST}` };
const evidence = (over: Partial<PromotionEvidence> = {}): PromotionEvidence => ({
  bundle: { name: 'web', version: '1.0', imageDigest: DIGEST },
  integrity: [], signers: [], logs: [],
  baseline: { compared: true },
  sbom: { added: [], removed: [], changed: [] },
  seccomp: { added: [], removed: [] },
  apparmor: { added: [], removed: [] },
  policy: { environment: 'production', allow: false, policies: ['p'], explanation: 'denied' },
  ...over,
});

describe('the promotion body', () => {
  it("a `|` in a bundle's or policy's text stays inside its table cell (no mention, link or image gets out)", () => {
    const hostile = 'x | @acme/admins ![p](https://t.example/p.png) | **ALLOW**';
    const body = renderPromotionBody(pin, undefined, evidence({
      bundle: { name: `web \\| ${hostile}`, version: '1 \\\\| two', imageDigest: DIGEST },
      source: { commit: 'c0ffee', repository: `acme/app ${hostile}` },
      policy: { environment: 'production', allow: false, policies: ['p'], explanation: 'denied', firstViolation: hostile },
    }), 'deploy/state.yaml');
    // Rendered as GitHub renders it: every row keeps its two cells, and nothing of the text shows as Markdown.
    const html = renderGfm(body);
    const rows = cellsPerRow(html);
    expect(rows.length).toBeGreaterThanOrEqual(6);
    expect(rows.every((n) => n === 2)).toBe(true);
    const shown = outsideCode(html);
    for (const s of ['<a ', '<img', '@acme', 'ALLOW']) expect(shown).not.toContain(s);
  });

  it('a body over the limit is cut within it, never inside a surrogate pair, saying so', () => {
    const body = renderPromotionBody(pin, undefined, evidence({ policy: { environment: 'production', allow: true, policies: ['p'], explanation: '😀'.repeat(40_000) } }), 'f');
    expect(body.length).toBeLessThanOrEqual(MAX_BODY);
    expect(body).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/);
    expect(body).toMatch(/more characters truncated\]$/);
  });
});
