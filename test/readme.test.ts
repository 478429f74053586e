/**
 * Runs the README's walkthrough exactly as written: the first ```bash block is extracted and
 * executed with bash from the repository root. If the README drifts from the CLI, this fails.
 */
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './support/cli.js';

describe('README walkthrough', () => {
  it('keygen → pack → two logs → sign → verify (quorum 2) → one byte changed → exit 1', () => {
    const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
    const block = /```bash\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block).toBeDefined();
    const r = spawnSync('bash', ['-c', block!], { cwd: repoRoot, encoding: 'utf8', timeout: 120_000 });
    if (r.status !== 0) throw new Error(`walkthrough failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
    expect(r.stdout).toContain('tampered bundle rejected with exit code 1');
    expect(r.stderr).toMatch(/DIGEST_MISMATCH/);
  }, 150_000);
});
