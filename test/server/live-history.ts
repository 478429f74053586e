/**
 * Shared by the SQLite and PostgreSQL suites: the live deployments (one per environment and app)
 * are found without reading the history's evidence. Every row the database hands back is
 * recorded; no row of the history may come back with its evidence or decision input.
 */
import { expect } from '@jest/globals';
import type { Db } from '../../server/store/db.js';

const REF = `registry.example/acme/app@sha256:${'a'.repeat(64)}`;

/** Live rows and history rows (history with corrupt evidence JSON: parsing it would throw). */
export async function fillHistory(db: Db): Promise<{ live: string[]; history: string[] }> {
  const t = 1_700_000_000_000;
  const add = (id: string, env: string, app: string, status: string, at: number, evidence: string) =>
    db.run(`INSERT INTO deployments (id, environment, app, commit_sha, reference, status, hosts, created_at, updated_at, evidence, decision_input) VALUES (?, ?, ?, ?, ?, ?, '{}', ?, ?, ?, ?)`, [id, env, app, `c-${id}`, REF, status, at, at, evidence, evidence === '{' ? '{' : '{"manifest":{"m":1}}']);
  const history: string[] = [];
  for (const [env, app] of [['production', 'api'], ['production', 'web'], ['staging', 'api']]) {
    for (let i = 0; i < 20; i++) {
      history.push(`old-${env}-${app}-${i}`);
      await add(`old-${env}-${app}-${i}`, env, app, 'succeeded', t + i, '{');
    }
  }
  await add('live-prod-api', 'production', 'api', 'succeeded', t + 100, '{"signers":["a"]}');
  await add('live-prod-web', 'production', 'web', 'succeeded', t + 101, '{"signers":["w"]}');
  await add('live-stage-api', 'staging', 'api', 'succeeded', t + 102, '{"signers":["s"]}');
  // Newer, not succeeded: not what runs.
  await add('failed-prod-api', 'production', 'api', 'failed', t + 200, '{');
  // An app that never succeeded anywhere.
  await add('denied-only', 'production', 'db', 'denied', t + 50, '{');
  return { live: ['live-stage-api', 'live-prod-web', 'live-prod-api'], history: [...history, 'failed-prod-api', 'denied-only'] };
}

/** Records every row `db.query` returns while `run` runs. */
export async function rowsRead<T>(db: Db, run: () => Promise<T>): Promise<{ out: T; rows: Record<string, unknown>[] }> {
  const query = db.query.bind(db);
  const rows: Record<string, unknown>[] = [];
  db.query = (async (sql: string, params?: unknown[]) => {
    const got = await query(sql, params);
    rows.push(...(got as Record<string, unknown>[]));
    return got;
  }) as Db['query'];
  try {
    return { out: await run(), rows };
  } finally {
    db.query = query;
  }
}

/** GET ?format=evidence (all, then one environment): the live rows, newest first, no history row's evidence read. */
export async function expectLiveOnly(url: string, db: Db, viewer: string, ids: { live: string[]; history: string[] }): Promise<void> {
  const get = async (query: string) => {
    const res = await fetch(`${url}/api/v1/deployments?format=evidence${query}`, { headers: { authorization: `Bearer ${viewer}` } });
    expect(res.status).toBe(200);
    return ((await res.json()) as { deployments: Array<{ id: string; evidence: unknown; manifest?: unknown }> }).deployments;
  };
  const all = await rowsRead(db, () => get(''));
  expect(all.out.map((d) => d.id)).toEqual(ids.live);
  expect(all.out[2]).toMatchObject({ evidence: { signers: ['a'] }, manifest: { m: 1 } });
  const history = new Set(ids.history);
  expect(all.rows.filter((r) => history.has(String(r.id)) && ('evidence' in r || 'decision_input' in r))).toEqual([]);
  const staging = await rowsRead(db, () => get('&environment=staging'));
  expect(staging.out.map((d) => d.id)).toEqual(['live-stage-api']);
  expect(staging.rows.filter((r) => history.has(String(r.id)) && 'evidence' in r)).toEqual([]);
}
