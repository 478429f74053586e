/**
 * The overview with many environments (shared by the SQLite and PostgreSQL tests): 100 apps with
 * one environment each plus one app in 200 environments. With one bound pair per (app,
 * environment) the page's query needed 2 × 100 × 201 = 40,200 parameters, past SQLite's 32,766,
 * and answered 500.
 */
import { expect } from '@jest/globals';
import type { Db } from '../../server/store/db.js';
import { MAX_OVERVIEW_CELLS } from '../../server/routes/dashboard.js';

export const WIDE_ENVIRONMENTS = 200;

export async function fillWide(db: Db): Promise<void> {
  const rows: unknown[][] = [];
  const row = (id: string, env: string, app: string, status: string, at: number) => [id, env, app, `c-${id}`, `r.example/${app}@sha256:${'a'.repeat(64)}`, status, at, at];
  for (let i = 0; i < 100; i++) rows.push(row(`narrow-${i}`, 'env-000', `app-${String(i).padStart(3, '0')}`, 'succeeded', 1000 + i));
  for (let e = 0; e < WIDE_ENVIRONMENTS; e++) {
    const env = `env-${String(e).padStart(3, '0')}`;
    // Each cell: a deploy that succeeded, then a refused one (a refused deploy adds its environment too).
    rows.push(row(`wide-${e}-ok`, env, 'zz-wide', 'succeeded', 2000 + e), row(`wide-${e}-denied`, env, 'zz-wide', 'denied', 3000 + e));
  }
  await db.tx(async (t) => {
    for (const r of rows) await t.run(`INSERT INTO deployments (id, environment, app, commit_sha, reference, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, r);
  });
}

type Cell = { last: { id: string; status: string }; live: { id: string } | null };
type Overview = { environments: string[]; apps: { app: string; environments: Record<string, Cell> }[]; next: string | null; limit: number };

export async function expectWideOverview(url: string, token: string): Promise<void> {
  const get = async (q: string) => {
    const r = await fetch(`${url}/api/v1/overview?${q}`, { headers: { authorization: `Bearer ${token}` } });
    expect(r.status).toBe(200);
    return (await r.json()) as Overview;
  };
  // A page covers at most MAX_OVERVIEW_CELLS apps × environments, whatever the limit asked:
  // 25 apps of 200 environments; `limit` says so and `next` reaches every app.
  const perPage = Math.floor(MAX_OVERVIEW_CELLS / WIDE_ENVIRONMENTS);
  const pages: Overview[] = [];
  for (let after = ''; ; ) {
    const page = await get(`limit=500${after ? `&after=${after}` : ''}`);
    expect(page.environments).toHaveLength(WIDE_ENVIRONMENTS);
    expect(page.limit).toBe(perPage);
    expect(page.apps.length * page.environments.length).toBeLessThanOrEqual(MAX_OVERVIEW_CELLS);
    pages.push(page);
    if (!page.next) break;
    after = page.next;
  }
  expect(pages).toHaveLength(Math.ceil(101 / perPage));
  const all = { apps: pages.flatMap((p) => p.apps) };
  expect(all.apps.map((a) => a.app)).toEqual([...Array.from({ length: 100 }, (_, i) => `app-${String(i).padStart(3, '0')}`), 'zz-wide']);
  // One app alone, by its exact name.
  expect((await get('app=app-042&limit=1')).apps.map((a) => a.app)).toEqual(['app-042']);
  const wide = all.apps.find((a) => a.app === 'zz-wide')!;
  expect(Object.keys(wide.environments)).toHaveLength(WIDE_ENVIRONMENTS);
  // The newest row of a cell is its last deploy; the newest that succeeded is what runs.
  expect(wide.environments['env-123']).toMatchObject({ last: { id: 'wide-123-denied', status: 'denied' }, live: { id: 'wide-123-ok' } });
  expect(all.apps.find((a) => a.app === 'app-042')!.environments).toEqual({ 'env-000': expect.objectContaining({ last: expect.objectContaining({ id: 'narrow-42', status: 'succeeded' }), live: { id: 'narrow-42', imageDigest: null } }) });
  // The default page (100 apps, bounded to 25 here) and, after the last narrow app, the wide one.
  const first = await get('');
  expect(first.apps).toHaveLength(perPage);
  expect(first.next).toBe(`app-${String(perPage - 1).padStart(3, '0')}`);
  const second = await get('after=app-099');
  expect(second.apps.map((a) => a.app)).toEqual(['zz-wide']);
  expect(Object.keys(second.apps[0].environments)).toHaveLength(WIDE_ENVIRONMENTS);
}
