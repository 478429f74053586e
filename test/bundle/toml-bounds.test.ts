/** #13 finding 2: the TOML pre-scan refuses what would make the parser expensive, and only that. */
import { describe, it, expect } from '@jest/globals';
import fc from 'fast-check';
import { stringify } from 'smol-toml';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TOML_LIMITS, tomlLimitExceeded } from '../../src/bundle/toml-bounds.js';
import { parseManifest, parseTomlText } from '../../src/bundle/manifest.js';
import { repoRoot } from '../support/cli.js';

describe('tomlLimitExceeded', () => {
  it('names each limit', () => {
    expect(tomlLimitExceeded('x'.repeat(TOML_LIMITS.chars + 1))?.limit).toBe('chars');
    expect(tomlLimitExceeded(Array.from({ length: 300 }, (_, i) => `[t${i}]`).join('\n'))?.limit).toBe('tables');
    expect(tomlLimitExceeded(Array.from({ length: 300 }, () => '[[a]]').join('\n'))?.limit).toBe('tables');
    expect(tomlLimitExceeded(Array.from({ length: 5000 }, (_, i) => `k${i} = 1`).join('\n'))?.limit).toBe('keys');
    expect(tomlLimitExceeded(`a = {${Array.from({ length: 5000 }, (_, i) => `k${i} = 1`).join(', ')}}`)?.limit).toBe('keys');
    expect(tomlLimitExceeded(`a = ${'['.repeat(17)}${']'.repeat(17)}`)?.limit).toBe('depth');
    expect(tomlLimitExceeded(`a = ${'{b = '.repeat(17)}1${'}'.repeat(17)}`)?.limit).toBe('depth');
    expect(tomlLimitExceeded(`${Array.from({ length: 17 }, (_, i) => `k${i}`).join('.')} = 1`)?.limit).toBe('keySegments');
    expect(tomlLimitExceeded(`[${Array.from({ length: 17 }, (_, i) => `k${i}`).join('.')}]`)?.limit).toBe('keySegments');
  });

  it('brackets, dots and equals signs inside strings and comments do not count', () => {
    const text = [
      `a = "${'[[{{.=.'.repeat(200)}"`,
      `b = '${'[[{{.=.'.repeat(200)}'`,
      `c = """\n${'[x]\n'.repeat(400)}"""`,
      `d = '''\n${'[x]\n k = v\n'.repeat(400)}'''`,
      `# ${'[[[[[[[[[[[[[[[[[[[[ a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r = '.repeat(10)}`,
      `e = "esc \\" [[[[[[[[[[[[[[[[[[[[["`,
      `f = 1.5e3`,
    ].join('\n');
    expect(tomlLimitExceeded(text)).toBeUndefined();
    expect(() => parseTomlText(text, 't')).not.toThrow();
  });

  it('every manifest and ct.toml in the repository passes', async () => {
    for (const ex of ['hello', 'http']) {
      const t = await readFile(join(repoRoot, 'examples', ex, 'ct.toml'), 'utf8').catch(() => undefined);
      if (t !== undefined) expect(tomlLimitExceeded(t)).toBeUndefined();
    }
  });

  it('seeded: documents within the limits that smol-toml writes are never refused', () => {
    const leaf = fc.oneof(fc.string({ maxLength: 20 }), fc.integer(), fc.boolean(), fc.double({ noNaN: true, noDefaultInfinity: true }));
    const key = fc.stringMatching(/^[a-z][a-z0-9_.\-[\]={}"' ]{0,12}$/);
    const value = fc.letrec((tie) => ({
      v: fc.oneof({ depthSize: 'small', maxDepth: 4 }, leaf, fc.array(tie('v'), { maxLength: 4 }), fc.dictionary(key, tie('v'), { maxKeys: 4 })),
    })).v;
    fc.assert(
      fc.property(fc.dictionary(key, value, { maxKeys: 8 }), (doc) => {
        let text: string;
        try {
          text = stringify(doc);
        } catch {
          return; // not representable in TOML
        }
        expect(tomlLimitExceeded(text)).toBeUndefined();
      }),
      { numRuns: 400, seed: 0x70_31 },
    );
  });

  it('parseManifest refuses beyond the limits with MANIFEST_INVALID and details.limit', () => {
    try {
      parseManifest(`a = ${'['.repeat(5000)}`);
      throw new Error('accepted');
    } catch (e) {
      expect(e).toMatchObject({ code: 'MANIFEST_INVALID', details: { limit: 'toml.depth' } });
    }
  });
});
