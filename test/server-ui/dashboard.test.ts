/**
 * Issue 12 acceptance in a real browser (Debian's Chromium, playwright-core) against a real
 * OpenID Connect provider and the whole deploy loop (real registry, verification, runc host):
 * an operator signs in, watches a deploy go to succeeded without a reload, opens its evidence,
 * rolls back, sees a denied deploy with its reason and code, and signs out; a viewer has no
 * rollback button and the API refuses them; an auditor reads and exports the audit. Markup in
 * messages, reasons, commits and container logs is shown as text. Every page passes axe with no
 * serious or critical violation.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { AxeBuilder } from '@axe-core/playwright';
import type { Browser, Page } from 'playwright-core';
import { loadConfig } from '../../server/config.js';
import { startServer, type RunningServer } from '../../server/start.js';
import { deployPipeline } from '../../server/deploy/wire.js';
import { createApiKey } from '../../server/auth/api-keys.js';
import { loopFixture, startTestHost, until, WEBHOOK_SECRET, type LoopFixture, type TestHost } from '../e2e/fixture.js';
import { startLoginProvider, type LoginProvider } from '../support/oidc-login.js';
import { launchBrowser, newContext, signIn } from '../support/browser.js';
import { containerIdFor } from '../../src/protocol/container-id.js';

const HOSTILE = '<img src=x id=pwned-log onerror=window.pwned=1>';
const HOSTILE_COMMIT = 'deploy hello again <img src=x id=pwned-commit-message onerror=window.pwned=1>';
const CONTAINER = containerIdFor('production', 'hello');
const gitIn = (cwd: string, args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 'Pat Policy', GIT_AUTHOR_EMAIL: 'pat@e', GIT_COMMITTER_NAME: 'p', GIT_COMMITTER_EMAIL: 'p@e' } }).trim();

/** scripts/dashboard-screenshots.sh sets this: the pages are photographed for docs/dashboard.md. */
const SHOTS = process.env.CT_DASHBOARD_SCREENSHOTS;
async function shot(page: Page, name: string): Promise<void> {
  if (!SHOTS) return;
  await page.evaluate('window.scrollTo(0, 0)');
  await page.screenshot({ path: join(SHOTS, `dashboard-${name}.png`), fullPage: false });
}

async function axe(page: Page, what: string): Promise<void> {
  const result = await new AxeBuilder({ page }).analyze();
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${what}: ${v.id} ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  expect(bad).toEqual([]);
}

describe('dashboard in Chromium', () => {
  let fx: LoopFixture;
  let provider: LoginProvider;
  let server: RunningServer;
  let host: TestHost;
  let browser: Browser;
  let admin: string;
  let policyCommit: string;

  beforeAll(async () => {
    // A one-second stop grace: the lifecycle buttons stop and restart the app without waiting 10 s.
    fx = await loopFixture({ greeting: `hello ${HOSTILE} from the container`, stopGraceSeconds: 1 });
    // The policies come from a git repository: the Policies page shows the commit in force.
    gitIn(fx.policiesDir, ['init', '-q', '-b', 'main']);
    gitIn(fx.policiesDir, ['add', '.']);
    gitIn(fx.policiesDir, ['commit', '-qm', 'production policy']);
    policyCommit = gitIn(fx.policiesDir, ['rev-parse', 'HEAD']);
    execFileSync('git', ['clone', '-q', '--bare', fx.policiesDir, join(fx.dir, 'policies.git')]);
    provider = await startLoginProvider({
      alice: { name: 'Alice', groups: ['ops'] },
      victor: { name: 'Victor', groups: ['readers'] },
      audrey: { name: 'Audrey', groups: ['audit'] },
    });
    const config = loadConfig({}, {
      port: 0, host: '127.0.0.1', dataDir: `${fx.dir}/server`, policies: join(fx.dir, 'policies.git'), trustStore: fx.trustStorePath,
      registries: { allow: [fx.registry.host], allowedAddresses: ['127.0.0.1'], insecure: [fx.registry.host] },
      github: { apiUrl: fx.github.url, token: 'ghs_servertoken', webhookSecrets: [WEBHOOK_SECRET], allowedAddresses: ['127.0.0.1'] },
      desiredState: { repo: fx.desiredRepo, branch: 'main', path: 'deploy', pollSeconds: 3600, report: { provider: 'github', repository: 'acme/desired' } },
      login: {
        oidc: [{ issuer: provider.issuer, clientId: 'ct-dashboard', groupsClaim: 'groups', name: 'Test IdP', roles: { ops: 'operator', readers: 'viewer', audit: 'auditor' } }],
        allowedAddresses: ['127.0.0.1'],
      },
    });
    server = await startServer(config, { log: pino({ level: 'silent' }), extend: (ctx) => deployPipeline(ctx, { hostTimeoutMs: 60_000 }) });
    provider.configure([`${server.url}/auth/callback`]);
    admin = (await createApiKey(server.ctx.db, 'admin', 'admin')).key;
    host = await startTestHost(server.url, admin, fx);
    browser = await launchBrowser();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await host?.stop();
    await server?.close();
    await provider?.close();
    await fx?.cleanup();
  });

  const history = (page: Page) => page.locator('[data-testid=history] tbody tr');
  const rowsWith = (page: Page, status: string) => page.locator(`[data-testid=history] tbody tr:has([data-status=${status}])`);

  it('an operator watches a deploy succeed live, opens its evidence, rolls back, sees a denial, signs out', async () => {
    const context = await newContext(browser);
    const page = await context.newPage();
    await signIn(page, server.url, 'alice');
    expect(await page.locator('[data-role]').textContent()).toBe('operator');
    await page.locator('[data-live=true]').waitFor();
    await axe(page, 'overview');

    await page.goto(`${server.url}/#/app/hello`);
    await page.getByRole('heading', { name: /App hello/ }).waitFor();
    // Record every status the history shows, from inside the page, and mark the page: a reload
    // would lose the mark.
    // (Page code is given as text: this file is type-checked without the DOM library.)
    await page.evaluate(`(() => {
      window.seen = [];
      window.mark = 'same page';
      setInterval(() => document.querySelectorAll('[data-testid=history] [data-status]').forEach((e) => {
        if (window.seen[window.seen.length - 1] !== e.dataset.status) window.seen.push(e.dataset.status);
      }), 10);
    })()`);
    const first = fx.commit({ hello: await fx.refs.good() }, 'deploy hello');
    expect(await fx.webhook(server.url, first)).toBe(202);
    await rowsWith(page, 'succeeded').first().waitFor({ timeout: 90_000 });
    const seen = (await page.evaluate('window.seen')) as string[];
    expect(seen[seen.length - 1]).toBe('succeeded');
    expect(seen.some((s) => ['queued', 'fetching', 'verifying', 'dispatching'].includes(s))).toBe(true);
    expect(await page.evaluate('window.mark')).toBe('same page');

    // A second bundle, so that there is something to roll back to.
    // Its commit message is hostile markup: the history shows it, with its author, as text.
    const second = fx.commit({ hello: await fx.refs.good('hello-two') }, HOSTILE_COMMIT);
    expect(await fx.webhook(server.url, second)).toBe(202);
    await until('two succeeded rows', async () => (await rowsWith(page, 'succeeded').count()) === 2, 90_000);
    expect(await history(page).first().locator('[data-commit-message]').textContent()).toBe(HOSTILE_COMMIT);
    expect(await history(page).first().locator('[data-commit-author]').textContent()).toBe('ci <ci@e>');
    expect(await history(page).nth(1).locator('[data-commit-message]').textContent()).toBe('deploy hello');
    expect(await page.locator('#pwned-commit-message').count()).toBe(0);
    // Who signed it and which bundle, as the API recorded them from the verified evidence.
    const newest = ((await (await fetch(`${server.url}/api/v1/deployments?app=hello&limit=1`, { headers: { authorization: `Bearer ${admin}` } })).json()) as { deployments: { bundleDigest: string; signers: string[] }[] }).deployments[0];
    expect(newest.signers).toEqual([expect.stringMatching(/^key \S+ \(builders\)$/)]);
    expect(await history(page).first().locator('[data-signers]').textContent()).toBe(newest.signers[0]);
    expect(await history(page).first().locator('[data-bundle]').textContent()).toBe(newest.bundleDigest.slice(7, 19));

    // Container log: hostile markup printed by the app is text.
    await page.getByRole('button', { name: 'Show log' }).click();
    await until('log shown', async () => ((await page.locator('[data-testid=log]').textContent().catch(() => '')) ?? '').includes(HOSTILE), 30_000);
    expect(await page.locator('#pwned-log').count()).toBe(0);
    expect(await page.evaluate('window.pwned')).toBeUndefined();
    await axe(page, 'app');
    // Follow: the log pane keeps itself up to date (each start below prints the greeting again).
    const greetings = async () => (((await page.locator('[data-testid=log]').textContent()) ?? '').split(HOSTILE).length - 1);
    const before = await greetings();
    // Following is one server-sent event stream (`follow=1`), not a poll of the log route.
    const logRequests: string[] = [];
    page.on('request', (r) => void (r.url().includes('/logs?') && logRequests.push(r.url())));
    await page.getByRole('checkbox', { name: 'Follow' }).check();

    // Stop, start and restart from the App page: runc's own state changes, each click audited.
    const runc = () => {
      try {
        return JSON.parse(execFileSync('runc', ['--root', host.runtime.root, 'state', CONTAINER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })) as { status: string; pid: number };
      } catch {
        return { status: 'absent', pid: 0 };
      }
    };
    const click = async (action: string, outcome: string) => {
      await page.getByRole('button', { name: `${action} hello in production`, exact: true }).click();
      await page.getByRole('status').filter({ hasText: `${action[0].toUpperCase()}${action.slice(1)}: ${outcome} on host-1` }).waitFor({ timeout: 30_000 });
    };
    expect(runc().status).toBe('running');
    await click('stop', 'stopped');
    expect(runc().status).toBe('absent');
    await click('start', 'running');
    const started = runc();
    expect(started.status).toBe('running');
    await click('restart', 'running');
    expect(runc().status).toBe('running');
    expect(runc().pid).not.toBe(started.pid);
    const acted = (await (await fetch(`${server.url}/api/v1/audit?kind=container.action&limit=10`, { headers: { authorization: `Bearer ${admin}` } })).json()) as { entries: { record: { action: string; container: string; principal: { kind: string; role: string }; results: { state?: string }[] } }[] };
    expect(acted.entries.map((e) => [e.record.action, e.record.container, e.record.results[0].state]).reverse()).toEqual([['stop', CONTAINER, 'stopped'], ['start', CONTAINER, 'running'], ['restart', CONTAINER, 'running']]);
    await until('the followed log shows the restarts', async () => (await greetings()) >= before + 2, 30_000);
    expect(logRequests.length).toBe(1);
    expect(logRequests[0]).toMatch(/follow=1/);
    // Done by the signed-in operator (her session), not by a machine key.
    expect(acted.entries.map((e) => `${e.record.principal.kind} ${e.record.principal.role}`)).toEqual(['session operator', 'session operator', 'session operator']);

    // Evidence of the newest deployment: who signed, which logs (two operators) hold it.
    await history(page).first().getByRole('link', { name: 'Evidence' }).click();
    await page.locator('[data-testid=signatures] tbody tr').first().waitFor();
    expect(await page.locator('[data-testid=signatures]').textContent()).toMatch(/key sha256:[0-9a-f]{16}|key [0-9a-f]{16}/);
    const tlog = (await page.locator('[data-testid=tlog]').textContent()) ?? '';
    expect(tlog).toContain('Operator One');
    expect(tlog).toContain('Operator Two');
    await axe(page, 'evidence');
    await shot(page, 'evidence');

    // Roll back the newest: a third deployment, of the first bundle, succeeds.
    await page.goBack();
    await page.locator('[data-testid=history]').waitFor();
    await history(page).first().getByRole('button', { name: 'Roll back' }).click();
    await page.getByRole('status').filter({ hasText: 'Rollback: queued' }).waitFor();
    await until('rollback succeeded', async () => (await rowsWith(page, 'succeeded').count()) === 3, 90_000);
    const api = (await (await fetch(`${server.url}/api/v1/deployments?app=hello`, { headers: { authorization: `Bearer ${admin}` } })).json()) as { deployments: { rollbackOf: string | null; reference: string; status: string }[] };
    expect(api.deployments[0]).toMatchObject({ status: 'succeeded', rollbackOf: expect.any(String), reference: await fx.refs.good() });

    // A denied deploy shows its code and the reason.
    const bad = fx.commit({ hello: fx.refs.tampered }, 'deploy a tampered bundle');
    expect(await fx.webhook(server.url, bad)).toBe(202);
    const denied = rowsWith(page, 'denied').first();
    await denied.waitFor({ timeout: 90_000 });
    const shown = await denied.locator('[data-reason]').textContent();
    const decided = (await (await fetch(`${server.url}/api/v1/deployments?app=hello&status=denied`, { headers: { authorization: `Bearer ${admin}` } })).json()) as { deployments: { reason: string; message: string }[] };
    expect(shown).toBe(decided.deployments[0].reason);
    expect(shown).toMatch(/^[A-Z_]+$/);
    expect(await denied.locator('[data-message]').textContent()).toBe(decided.deployments[0].message);
    await shot(page, 'app');
    await page.goto(`${server.url}/#/`);
    await page.locator('[data-cell="production/hello"]').waitFor();
    // The container runs (no health check declared): healthy by its state, not "none".
    expect(await page.locator('[data-cell="production/hello"] [data-status]').nth(1).textContent()).toBe('healthy');
    await shot(page, 'overview');

    await page.goto(`${server.url}/#/hosts`);
    await page.getByRole('heading', { name: 'Hosts', exact: true }).waitFor();
    const hostCard = (await page.locator('article.host').first().textContent()) ?? '';
    expect(hostCard).toContain('host-1');
    expect(hostCard).toMatch(/connected/);
    expect(hostCard).toMatch(/seccompyes/);
    await axe(page, 'hosts');
    await shot(page, 'hosts');
    await page.goto(`${server.url}/#/policies`);
    await page.getByRole('heading', { name: 'Policies', exact: true }).waitFor();
    await page.locator('main table tbody tr').first().waitFor();
    // The set in force and the policy repository's commit it was read at.
    expect(await page.locator('[data-policy-commit]').textContent()).toBe(policyCommit.slice(0, 12));
    expect(await page.locator('[data-policy-commit]').getAttribute('title')).toBe(policyCommit);
    await axe(page, 'policies');
    await shot(page, 'policies');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('link', { name: /^Sign in with/ }).waitFor();
    await axe(page, 'sign-in');
    await shot(page, 'sign-in');
    await context.close();
  }, 300_000);

  it('a viewer has no rollback button, and the API refuses their rollback', async () => {
    const context = await newContext(browser);
    const page = await context.newPage();
    await signIn(page, server.url, 'victor');
    // Keyboard only: Tab from the top of the overview reaches the app's link, Enter opens it.
    await page.locator('[data-cell="production/hello"]').waitFor();
    let focused = '';
    for (let i = 0; i < 30 && focused !== 'hello'; i++) {
      await page.keyboard.press('Tab');
      focused = String(await page.evaluate('document.activeElement && document.activeElement.textContent'));
    }
    expect(focused).toBe('hello');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: /App hello/ }).waitFor();
    expect(page.url()).toBe(`${server.url}/#/app/hello`);
    await history(page).first().waitFor();
    expect(await page.getByRole('button', { name: 'Roll back' }).count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Sync now' }).count()).toBe(0);
    expect(await page.getByRole('link', { name: 'Audit' }).count()).toBe(0);
    await page.getByRole('heading', { name: 'Desired and live' }).waitFor();
    expect(await page.getByRole('button', { name: /^(stop|start|restart) / }).count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Show log' }).count()).toBe(0);
    const id = await history(page).first().getAttribute('data-deployment');
    // From the page itself, with the session's CSRF token: the role is what refuses it.
    const answer = await page.evaluate(async (dep) => {
      const me = (await (await fetch('/api/v1/session')).json()) as { csrfToken: string };
      const res = await fetch(`/api/v1/deployments/${dep}/rollback`, { method: 'POST', headers: { 'x-csrf-token': me.csrfToken } });
      return { status: res.status, code: ((await res.json()) as { error: { code: string } }).error.code };
    }, id);
    expect(answer).toEqual({ status: 403, code: 'FORBIDDEN' });
    const action = await page.evaluate(async (dep) => {
      const me = (await (await fetch('/api/v1/session')).json()) as { csrfToken: string };
      const res = await fetch(`/api/v1/deployments/${dep}/actions`, { method: 'POST', headers: { 'x-csrf-token': me.csrfToken, 'content-type': 'application/json' }, body: JSON.stringify({ action: 'stop' }) });
      return { status: res.status, code: ((await res.json()) as { error: { code: string } }).error.code };
    }, id);
    expect(action).toEqual({ status: 403, code: 'FORBIDDEN' });
    await context.close();
  }, 60_000);

  it('an auditor reads and exports the audit; markup in commits, reasons, messages and policy messages is text', async () => {
    // Records as hostile as the data can be: a deployment and a decision carrying markup.
    const now = Date.now();
    await server.ctx.db.run(
      `INSERT INTO deployments (id, environment, app, commit_sha, reference, status, reason, message, hosts, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'denied', ?, ?, '{}', ?, ?)`,
      ['xss-1', 'production', 'hello', '<b id=pwned-commit>c</b>', 'r/x@sha256:' + '0'.repeat(64), '<i id=pwned-reason>R</i>', '<script id=pwned-message>window.pwned=1</script>', now + 10_000, now + 10_000],
    );
    await server.ctx.db.run('INSERT INTO audit (id, time, kind, subject, record) VALUES (?, ?, ?, ?, ?)', [
      'audit-xss', now + 10_000, 'deploy.decision', 'xss-1', JSON.stringify({ environment: 'production', app: 'hello', decision: 'denied', code: 'POLICY_DENIED', message: '<img src=x id=pwned-policy onerror=window.pwned=1>' }),
    ]);
    const context = await newContext(browser);
    const page = await context.newPage();
    await signIn(page, server.url, 'audrey');
    await page.goto(`${server.url}/#/app/hello`);
    const row = page.locator('[data-deployment=xss-1]');
    await row.waitFor();
    expect(await row.textContent()).toContain('<script id=pwned-message>window.pwned=1</script>');
    expect(await row.textContent()).toContain('<i id=pwned-reason>R</i>');
    await page.getByRole('link', { name: 'Audit' }).click();
    await page.locator('[data-testid=audit] tbody tr').first().waitFor();
    const audit = (await page.locator('[data-testid=audit]').textContent()) ?? '';
    expect(audit).toContain('<img src=x id=pwned-policy onerror=window.pwned=1>');
    // The real denial recorded by the pipeline is there with its code.
    expect(audit).toMatch(/denied\s*[A-Z_]{4,}/);
    for (const id of ['pwned-commit', 'pwned-reason', 'pwned-message', 'pwned-policy']) expect(await page.locator(`#${id}`).count()).toBe(0);
    expect(await page.evaluate('window.pwned')).toBeUndefined();
    await axe(page, 'audit');
    await shot(page, 'audit');
    // The export is JSON lines, one record per line, every page of them (it follows `next`).
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export JSON lines' }).click()]);
    expect(download.suggestedFilename()).toBe('audit.jsonl');
    const exported = readFileSync(await download.path(), 'utf8');
    await expect(page.getByRole('status').filter({ hasText: /^Exported \d+ records\.$/ }).count()).resolves.toBe(1);
    const lines = exported.trim().split('\n').map((l) => JSON.parse(l) as { kind: string });
    expect(lines.length).toBeGreaterThan(3);
    expect(lines.some((l) => l.kind === 'deploy.decision')).toBe(true);
    await context.close();
  }, 60_000);

  it('the overview says which desired-state commit is in force, and that a broken one was not applied, where (markup as text)', async () => {
    const context = await newContext(browser);
    const page = await context.newPage();
    await signIn(page, server.url, 'victor');
    const line = page.locator('[data-testid=desired-state]');
    await line.waitFor();
    const applied = (await (await fetch(`${server.url}/api/v1/sync`, { headers: { authorization: `Bearer ${(await createApiKey(server.ctx.db, 'sync-viewer', 'viewer')).key}` } })).json()) as { applied: { commit: string } };
    expect(await line.textContent()).toContain(`commit ${applied.applied.commit.slice(0, 12)} applied`);
    // A commit whose YAML breaks: the line says so live (no reload), naming the file, line and column.
    const broken = fx.commitText('environments:\n  production:\n    apps:\n      hello: {bundle: x, bundle: y}\n', 'broken');
    expect(await fx.webhook(server.url, broken)).toBe(202);
    await line.getByRole('alert').filter({ hasText: broken.slice(0, 12) }).waitFor();
    const text = (await line.textContent()) ?? '';
    expect(text).toContain(`commit ${broken.slice(0, 12)} not applied (refused:INVALID_STATE): deploy/state.yaml:4:26: not valid YAML: Map keys must be unique`);
    expect(text).toContain(`commit ${applied.applied.commit.slice(0, 12)} applied`);
    // The refusal names what the commit holds: markup there is text.
    const hostile = fx.commitText('environments:\n  production:\n    apps:\n      "<img src=x id=pwned-sync onerror=window.pwned=1>": {bundle: x}\n', 'hostile');
    expect(await fx.webhook(server.url, hostile)).toBe(202);
    await line.getByRole('alert').filter({ hasText: hostile.slice(0, 12) }).waitFor();
    expect(await line.textContent()).toContain('apps.<img src=x id=pwned-sync onerror=window.pwned=1>: invalid app name');
    expect(await page.locator('#pwned-sync').count()).toBe(0);
    expect(await page.evaluate('window.pwned')).toBeUndefined();
    await axe(page, 'overview with a refused commit');
    await context.close();
  }, 60_000);
});
