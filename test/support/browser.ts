/**
 * Debian's Chromium driven by playwright-core (no browser download): one launch per test file,
 * a fresh context (cookies) per person. Requests leaving 127.0.0.1 are refused, so a page can
 * never reach the Internet (the provider's login page names a web font).
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** `args`: more Chromium switches, e.g. `--host-resolver-rules=MAP ct.test 127.0.0.1` for a name that is not a secure context. */
export async function launchBrowser(args: readonly string[] = []): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (README set-up line)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', ...args],
  });
}

/** `hosts`: the host names pages may reach besides 127.0.0.1 (each mapped to it by launchBrowser's `args`). */
export async function newContext(browser: Browser, hosts: readonly string[] = []): Promise<BrowserContext> {
  const context = await browser.newContext();
  const allowed = ['127.0.0.1', ...hosts].map((h) => h.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');
  await context.route(new RegExp(`^https?://(?!(?:${allowed})[:/])`), (r) => r.abort());
  return context;
}

/** Signs `login` in through the dashboard's sign-in page and the provider's login form. */
export async function signIn(page: Page, serverUrl: string, login: string): Promise<void> {
  await page.goto(`${serverUrl}/`);
  await page.getByRole('link', { name: /^Sign in with/ }).first().click();
  await page.locator('input[name=login]').fill(login);
  await page.locator('input[name=password]').fill('any');
  await page.getByRole('button', { name: 'Sign-in' }).click();
  await page.waitForURL(`${serverUrl}/**`);
  await page.locator('.who').waitFor();
}
