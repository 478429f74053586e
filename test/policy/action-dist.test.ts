import { describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../support/cli.js';

const DIST = join(repoRoot, 'actions', 'policy-check', 'dist');

describe('policy-check action bundle', () => {
  it('the committed dist/ is what build.mjs produces from the current sources', async () => {
    const out = await mkdtemp(join(tmpdir(), 'ct-policy-dist-'));
    try {
      execFileSync(process.execPath, [join(repoRoot, 'actions', 'policy-check', 'build.mjs'), '--out', out], { stdio: 'pipe' });
      for (const f of ['index.js', 'gitlab.js']) expect((await readFile(join(out, f))).equals(await readFile(join(DIST, f)))).toBe(true);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });

  it('runs as a GitHub Action: job summary written, result output set', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'ct-policy-run-'));
    try {
      const summary = join(tmp, 'summary.md');
      const output = join(tmp, 'output.txt');
      await writeFile(summary, '');
      await writeFile(output, '');
      execFileSync(process.execPath, [join(DIST, 'index.js')], {
        cwd: tmp,
        stdio: 'pipe',
        env: { PATH: process.env.PATH, GITHUB_STEP_SUMMARY: summary, GITHUB_OUTPUT: output, INPUT_POLICIES: join(repoRoot, 'examples', 'policy-repo', 'policies'), 'INPUT_REQUIRE-TESTS': 'true' },
      });
      expect(await readFile(summary, 'utf8')).toMatch(/^<!-- cerro-torre\/policy -->\n## Cerro Torre policy check: ✅ passed/);
      expect(await readFile(output, 'utf8')).toContain('success');
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
});
