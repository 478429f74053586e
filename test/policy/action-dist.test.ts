import { describe, expect, it } from '@jest/globals';
import { execFile, execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { promisify } from 'node:util';
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

  // A fork's pull request runs with a read-only GITHUB_TOKEN: every write answers 403. Only then is
  // a status that cannot be posted a warning; from the repository itself it fails the job.
  it('a token that may not post statuses or comments: summary and result output written all the same; a warning for a fork, a failure otherwise', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'ct-policy-run-'));
    const seen: string[] = [];
    const api = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ message: 'Resource not accessible by integration' }));
    });
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
    const port = (api.address() as { port: number }).port;
    const runWith = async (headRepo: string) => {
      const summary = join(tmp, `summary-${headRepo.replace('/', '_')}.md`);
      const output = join(tmp, `output-${headRepo.replace('/', '_')}.txt`);
      const event = join(tmp, 'event.json');
      await writeFile(summary, '');
      await writeFile(output, '');
      const repo = (full: string) => ({ full_name: full });
      await writeFile(event, JSON.stringify({ pull_request: { number: 3, head: { sha: 'c'.repeat(40), repo: repo(headRepo) }, base: { repo: repo('acme/policies') } } }));
      seen.length = 0;
      const done = await promisify(execFile)(process.execPath, [join(DIST, 'index.js')], {
        cwd: tmp,
        env: { PATH: process.env.PATH, GITHUB_STEP_SUMMARY: summary, GITHUB_OUTPUT: output, GITHUB_EVENT_PATH: event, GITHUB_REPOSITORY: 'acme/policies', GITHUB_API_URL: `http://127.0.0.1:${port}`, INPUT_TOKEN: 'ghs_readonly', INPUT_POLICIES: join(repoRoot, 'examples', 'policy-repo', 'policies'), 'INPUT_REQUIRE-TESTS': 'true' },
      }).then(({ stdout }) => ({ code: 0, stdout }), (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }));
      return { ...done, summary: await readFile(summary, 'utf8'), output: await readFile(output, 'utf8') };
    };
    try {
      const fork = await runWith('mallory/policies');
      expect(seen.some((s) => s.startsWith('POST /repos/acme/policies/statuses/'))).toBe(true);
      expect(fork.code).toBe(0);
      expect(fork.summary).toMatch(/^<!-- cerro-torre\/policy -->\n## Cerro Torre policy check: ✅ passed/);
      expect(fork.output).toContain('success');
      expect(fork.stdout).toContain('::warning::the cerro-torre/policy commit status was not posted');
      expect(fork.stdout).toContain('from a fork');
      expect(fork.stdout).not.toContain('::error::');

      const own = await runWith('acme/policies');
      expect(seen.some((s) => s.startsWith('POST /repos/acme/policies/statuses/'))).toBe(true);
      expect(own.code).toBe(1);
      expect(own.summary).toMatch(/^<!-- cerro-torre\/policy -->\n## Cerro Torre policy check: ✅ passed/);
      expect(own.output).toContain('success');
      expect(own.stdout).toContain('::error::the cerro-torre/policy commit status was not posted');
      expect(own.stdout).not.toContain('fork');
    } finally {
      api.close();
      await rm(tmp, { recursive: true, force: true });
    }
  });
});
