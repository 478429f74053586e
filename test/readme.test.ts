/**
 * Runs the README's walkthrough exactly as written: the first ```bash block is extracted and
 * executed with bash from the repository root. If the README drifts from the CLI, this fails.
 * The quick start is held to what it says: one set-up line (the same packages CI installs), then
 * `npm ci && npm start` (run here as written, after the harness's own `npm ci`) prints where to
 * look and those addresses answer, signed in through the printed one-time link; `npm test` and
 * `ct quickstart` (test/quickstart/) are the other commands.
 */
import { describe, expect, it } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './support/cli.js';
import { followLoginLink } from './support/login-link.js';

const readme = () => readFileSync(join(repoRoot, 'README.md'), 'utf8');
const quickStart = () => readme().slice(readme().indexOf('## Quick start'), readme().indexOf('\n## ', readme().indexOf('## Quick start') + 5));
const aptPackages = (text: string) => (/apt-get install -y((?:[^\n\\]|\\\n)*)/.exec(text)?.[1] ?? '').replace(/\\\n/g, ' ').split(/\s+/).filter((w) => w && !w.startsWith('-') && !w.startsWith('>')).sort();

describe('README quick start', () => {
  it('one set-up line with exactly the Debian packages CI installs, then npm ci && npm start, npm test, ct quickstart', () => {
    const q = quickStart();
    const setup = [...q.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]);
    expect(setup[0].trim().split('\n')).toHaveLength(1);
    expect(aptPackages(setup[0])).toEqual(aptPackages(readFileSync(join(repoRoot, '.ci/run'), 'utf8')));
    expect(setup[1]).toMatch(/^npm ci && npm start\s+#/m);
    expect(setup[1]).toMatch(/^npm test\s+#/m);
    expect(setup[2]).toMatch(/^sudo node bin\/ct\.js quickstart\s+#/m);
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).toBe('node bin/ct.js serve');
    expect(pkg.scripts.test).toContain('jest');
  });

  it('npm start runs the deploy server with embedded defaults and prints where to look; each address answers', async () => {
    const data = mkdtempSync(join(tmpdir(), 'ct-npm-start-'));
    // As written (npm start), on a free port and a scratch data directory instead of ./data.
    const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0', CT_DATA_DIR: data };
    for (const k of Object.keys(env)) if (/^(npm_|CT_CONFIG$|CT_ADMIN_API_KEY$|CT_TRUST_STORE$|CT_POLICIES$|DATABASE_URL$)/i.test(k) && k !== 'CT_DATA_DIR') delete env[k];
    const child = spawn('npm', ['start'], { cwd: repoRoot, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    try {
      const end = Date.now() + 60_000;
      while (!out.includes('desired state:')) {
        if (child.exitCode !== null || Date.now() > end) throw new Error(`npm start did not print where to look:\n${out}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
      expect(url).toBeDefined();
      expect(out).toContain(`SQLite in ${data}/ct.db`);
      for (const path of ['/healthz', '/openapi.json']) expect([path, (await fetch(`${url}${path}`)).status]).toEqual([path, 200]);
      expect(out).toContain(`API:      ${url}/api/v1`);
      // The dashboard line is a one-time sign-in link: its page's Sign in button signs in once, then the dashboard answers.
      const link = new RegExp(`dashboard: (${url}/auth/link\\?token=\\S+)`).exec(out)?.[1];
      expect(link).toBeDefined();
      const signedIn = await followLoginLink(link!);
      expect([signedIn.status, signedIn.headers.get('location')]).toEqual([303, '/']);
      const cookie = signedIn.headers.getSetCookie().find((c) => c.startsWith('__Host-ct_session='))!.split(';')[0];
      const page = await fetch(`${url}/`, { headers: { cookie } });
      expect([page.status, page.headers.get('content-type')]).toEqual([200, expect.stringContaining('text/html')]);
      expect(await (await fetch(`${url}/api/v1/session`, { headers: { cookie } })).json()).toMatchObject({ kind: 'session', role: 'admin' });
      expect((await followLoginLink(link!)).status).toBe(401);
      // A second server on the same port says so and exits at once (it hung with a stack trace).
      // Before it opened a database or a key (it migrated the running server's database and took
      // its jobs back into its own queue first).
      const secondData = join(mkdtempSync(join(tmpdir(), 'ct-npm-start-2-')), 'data');
      const second = spawnSync(process.execPath, [join(repoRoot, 'bin', 'ct.js'), 'serve'], { env: { ...env, PORT: new URL(url!).port, CT_DATA_DIR: secondData }, encoding: 'utf8', timeout: 30_000 });
      expect([second.status, second.signal, second.stdout]).toEqual([1, null, '']);
      expect(second.stderr).toBe(`error[PORT_IN_USE]: 127.0.0.1:${new URL(url!).port} is already in use (another ct serve, or another program, listens there): stop it, or set PORT (or port in CT_CONFIG)\n`);
      expect(existsSync(secondData)).toBe(false);
    } finally {
      if (child.exitCode === null) {
        process.kill(-child.pid!, 'SIGINT');
        await new Promise((r) => child.once('exit', r));
      }
      rmSync(data, { recursive: true, force: true });
    }
  }, 90_000);
});

describe('README walkthrough', () => {
  it('keygen → pack → two logs → sign → verify (quorum 2) → one byte changed → exit 1', () => {
    const block = /```bash\n([\s\S]*?)```/.exec(readme())?.[1];
    expect(block).toBeDefined();
    const r = spawnSync('bash', ['-c', block!], { cwd: repoRoot, encoding: 'utf8', timeout: 120_000 });
    if (r.status !== 0) throw new Error(`walkthrough failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
    expect(r.stdout).toContain('tampered bundle rejected with exit code 1');
    expect(r.stderr).toMatch(/DIGEST_MISMATCH/);
  }, 150_000);
});
