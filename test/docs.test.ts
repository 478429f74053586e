import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CODES } from '../src/core/codes.js';
import { VIOLATION_CODES } from '../src/policy/codes.js';
import { repoRoot } from './support/cli.js';

describe('docs/error-codes.md', () => {
  it('documents every code with the exit code it maps to', () => {
    const doc = readFileSync(join(repoRoot, 'docs', 'error-codes.md'), 'utf8');
    const missing = Object.entries(CODES).filter(([code, exit]) => !new RegExp(`\\| \`${code}\` \\| ${exit} \\|`).test(doc)).map(([c]) => c);
    expect(missing).toEqual([]);
  });

  it('documents every policy violation code in its table', () => {
    const doc = readFileSync(join(repoRoot, 'docs', 'error-codes.md'), 'utf8');
    const policy = doc.slice(doc.indexOf('## Policy codes'));
    const missing = Object.keys(VIOLATION_CODES).filter((code) => !policy.includes(`| \`${code}\` |`));
    expect(missing).toEqual([]);
  });
});
