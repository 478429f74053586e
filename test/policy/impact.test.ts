import { describe, expect, it } from '@jest/globals';
import { overlaySources, MAX_PROPOSAL_FILES } from '../../src/policy/impact.js';
import { codeOf } from '../support/error-code.js';

const base = [{ file: '/repo/prod.policy.yaml', text: 'a', defaultName: 'prod.policy' }, { file: '/repo/dev/policy.yaml', text: 'b', defaultName: 'dev.policy' }];

describe('policy proposals laid over the repository', () => {
  it('replaces, adds and removes by path relative to the root', () => {
    const out = overlaySources(base, '/repo', { files: [{ path: 'prod.policy.yaml', text: 'new' }, { path: 'staging/policy.yaml', text: 'c' }], remove: ['dev/policy.yaml'] });
    expect(out.map((s) => [s.file, s.text])).toEqual([['/repo/prod.policy.yaml', 'new'], ['/repo/staging/policy.yaml', 'c']]);
  });

  it('refuses paths that leave the repository, hidden or non-policy files, and oversized proposals', () => {
    for (const path of ['../etc/x.policy.yaml', '/abs/policy.yaml', '.git/policy.yaml', 'a/../../policy.yaml', 'notes.md', 'fixtures/allow.yaml', 'a\nb.policy.yaml', 'a\\b.policy.yaml', '', 'x'.repeat(300)]) {
      expect(codeOf(() => overlaySources(base, '/repo', { files: [{ path, text: 'x' }] }))).toBe('USAGE');
    }
    expect(codeOf(() => overlaySources(base, '/repo', { files: [{ path: 'p.policy.yaml', text: 'x'.repeat(300 * 1024) }] }))).toBe('USAGE');
    const many = Array.from({ length: MAX_PROPOSAL_FILES + 1 }, (_, i) => ({ path: `p${i}.policy.yaml`, text: 'x' }));
    expect(codeOf(() => overlaySources(base, '/repo', { files: many }))).toBe('USAGE');
  });
});
