/**
 * The files the GitLab entry points leave in the project directory for GitLab to pick up (the
 * dotenv outputs, the summary, the policy report and JUnit, the ct-out directory) are written in
 * a checkout of the merge request under test. A symbolic link committed under one of those names
 * must not aim the job's write at another file of the runner: it is refused, the file it points at
 * is left as it was, and the job fails saying why.
 */
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeJobFileSync } from '../../src/core/fs.js';
import { gitlabIo, main } from '../../actions/build/gitlab.js';
import { REPO } from './runner.js';

function workspace(): { dir: string; victim: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ct-job-files-'));
  const victim = join(dir, 'victim');
  writeFileSync(victim, 'the runner’s own file\n');
  mkdirSync(join(dir, 'project'));
  return { dir, victim };
}

describe('files a GitLab job writes into its project directory', () => {
  it('writeJobFileSync writes, appends and creates the directory; refuses a symbolic link in the file’s place (IO_ERROR)', () => {
    const { dir, victim } = workspace();
    const file = join(dir, 'project', 'sub', 'report.md');
    writeJobFileSync(file, 'one\n');
    writeJobFileSync(file, 'two\n', { append: true });
    expect(readFileSync(file, 'utf8')).toBe('one\ntwo\n');
    writeJobFileSync(file, 'ü\n');
    expect(readFileSync(file, 'utf8')).toBe('ü\n');
    const link = join(dir, 'project', 'policy-report.md');
    symlinkSync(victim, link);
    for (const append of [false, true]) {
      expect(() => writeJobFileSync(link, 'x', { append })).toThrow(expect.objectContaining({ code: 'IO_ERROR', message: expect.stringContaining('is a symbolic link') }));
    }
    // A dangling link is refused too (O_CREAT would otherwise create its target).
    const dangling = join(dir, 'project', 'ct-outputs.env');
    symlinkSync(join(dir, 'created-elsewhere'), dangling);
    expect(() => writeJobFileSync(dangling, 'x')).toThrow(expect.objectContaining({ code: 'IO_ERROR' }));
    expect(readFileSync(victim, 'utf8')).toBe('the runner’s own file\n');
    expect(readdirSync(dir).sort()).toEqual(['project', 'victim']);
  });

  it('the dotenv outputs and the summary refuse a committed link; the runner’s file is unchanged', async () => {
    const { dir, victim } = workspace();
    const outputs = join(dir, 'project', 'ct-outputs.env');
    const summary = join(dir, 'project', 'ct-summary.md');
    symlinkSync(victim, outputs);
    symlinkSync(victim, summary);
    const io = gitlabIo({ CT_OUTPUT_ENV: outputs, CT_SUMMARY_FILE: summary });
    expect(() => io.setOutput('digest', 'sha256:abc')).toThrow(expect.objectContaining({ code: 'IO_ERROR' }));
    await expect(io.summary('# built\n')).rejects.toMatchObject({ code: 'IO_ERROR' });
    expect(readFileSync(victim, 'utf8')).toBe('the runner’s own file\n');
  });

  it('a committed dotenv report or summary is replaced, not appended to: its variables never reach later jobs', async () => {
    const { dir } = workspace();
    const outputs = join(dir, 'project', 'ct-outputs.env');
    const summary = join(dir, 'project', 'ct-summary.md');
    writeFileSync(outputs, 'CT_SERVER=https://attacker.example\n');
    writeFileSync(summary, '# Verified ✅\n');
    const io = gitlabIo({ CT_OUTPUT_ENV: outputs, CT_SUMMARY_FILE: summary });
    io.setOutput('bundle-digest', 'sha256:abc');
    io.setOutput('image-digest', 'sha256:def');
    await io.summary('# built\n');
    await io.summary('more\n');
    expect(readFileSync(outputs, 'utf8')).toBe('CT_BUNDLE_DIGEST=sha256:abc\nCT_IMAGE_DIGEST=sha256:def\n');
    expect(readFileSync(summary, 'utf8')).toBe('# built\nmore\n');
  });

  it('a committed ct-out link fails the job before anything is built into it, however CT_OUTPUT_DIR spells it', async () => {
    const { dir, victim } = workspace();
    const elsewhere = join(dir, 'elsewhere');
    mkdirSync(elsewhere);
    symlinkSync(elsewhere, join(dir, 'project', 'ct-out'));
    const errors: string[] = [];
    const original = console.error;
    console.error = (m: string) => void errors.push(m);
    try {
      for (const spelled of [undefined, `${join(dir, 'project', 'ct-out')}/`, ` ${join(dir, 'project', 'ct-out')} `]) {
        process.exitCode = 0;
        await main(['build'], { CI_PROJECT_DIR: join(dir, 'project'), CT_PATH: 'examples/hello', CT_OUTPUT_ENV: join(dir, 'out.env'), CT_SUMMARY_FILE: join(dir, 'summary.md'), ...(spelled ? { CT_OUTPUT_DIR: spelled } : {}) });
        expect([spelled, process.exitCode]).toEqual([spelled, 1]);
      }
    } finally {
      console.error = original;
      process.exitCode = 0;
    }
    expect(errors).toHaveLength(3);
    for (const e of errors) expect(e).toMatch(/^ERROR: IO_ERROR: refusing to write into .*\/project\/ct-out: it is a symbolic link/);
    expect(readdirSync(elsewhere)).toEqual([]);
    expect(readFileSync(victim, 'utf8')).toBe('the runner’s own file\n');
  });

  it('ct-gitlab policy-check refuses a committed policy-report.md link, says so, and fails', () => {
    const { dir, victim } = workspace();
    const project = join(dir, 'project');
    symlinkSync(victim, join(project, 'policy-report.md'));
    const r = spawnSync(process.execPath, [join(REPO, 'bin/ct-gitlab.js'), 'policy-check'], {
      cwd: project, encoding: 'utf8', timeout: 60_000,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, CT_POLICY_DIR: join(REPO, 'policies'), CI_PROJECT_DIR: project },
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('ERROR: IO_ERROR: refusing to write policy-report.md: it is a symbolic link');
    expect(readFileSync(victim, 'utf8')).toBe('the runner’s own file\n');
    // Without the link the same run writes both artifacts.
    const clean = join(dir, 'clean');
    mkdirSync(clean);
    const ok = spawnSync(process.execPath, [join(REPO, 'bin/ct-gitlab.js'), 'policy-check'], {
      cwd: clean, encoding: 'utf8', timeout: 60_000,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, CT_POLICY_DIR: join(REPO, 'policies'), CI_PROJECT_DIR: clean },
    });
    expect(ok.stderr).not.toContain('ERROR');
    expect(readdirSync(clean).sort()).toEqual(['policy-junit.xml', 'policy-report.md']);
  });
});
