/**
 * The promotion body a reviewer reads (src/promote/body.ts): text from bundles and policies cannot
 * leave its code span, not even in the table, where GitHub and GitLab split a row at every
 * unescaped `|` (code spans included); and the cut to the size limit never splits a character.
 */
import { describe, expect, it } from '@jest/globals';
import { MAX_BODY, renderPromotionBody } from '../../src/promote/body.js';
import type { PromotionEvidence } from '../../src/promote/evidence.js';

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

/** A table row's cell delimiters as GFM counts them: a `|` not escaped by an odd run of backslashes. */
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

describe('the promotion body', () => {
  it("a `|` in a bundle's or policy's text stays inside its table cell (no mention, link or image gets out)", () => {
    const hostile = 'x | @acme/admins ![p](https://t.example/p.png) | **ALLOW**';
    const body = renderPromotionBody(pin, undefined, evidence({
      bundle: { name: `web \\| ${hostile}`, version: '1 \\\\| two', imageDigest: DIGEST },
      source: { commit: 'c0ffee', repository: `acme/app ${hostile}` },
      policy: { environment: 'production', allow: false, policies: ['p'], explanation: 'denied', firstViolation: hostile },
    }), 'deploy/state.yaml');
    const rows = body.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| | |'));
    expect(rows.length).toBeGreaterThanOrEqual(6);
    for (const row of rows) expect([row, delimiters(row)]).toEqual([row, 3]);
  });

  it('a body over the limit is cut within it, never inside a surrogate pair, saying so', () => {
    const body = renderPromotionBody(pin, undefined, evidence({ policy: { environment: 'production', allow: true, policies: ['p'], explanation: '😀'.repeat(40_000) } }), 'f');
    expect(body.length).toBeLessThanOrEqual(MAX_BODY);
    expect(body).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/);
    expect(body).toMatch(/more characters truncated\]$/);
  });
});
