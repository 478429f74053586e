/**
 * `GET /api/v1/drift` (viewers) parses each host's inventory once, not once per live app, and reads
 * only the newest succeeded deployment of each (environment, app), not every succeeded one ever.
 * What it answers is unchanged: MISSING, WRONG_IMAGE and NOT_RUNNING per matching host.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { testServer } from './support.js';
import { createApiKey } from '../../server/auth/api-keys.js';
import { deployPipeline } from '../../server/deploy/wire.js';
import { containerIdFor } from '../../src/protocol/container-id.js';
import { rowsRead } from './live-history.js';

const digest = (c: string) => `sha256:${c.repeat(64)}`;
const APPS = 6;
const HOSTS = 4;

describe('GET /api/v1/drift: bounded work', () => {
  let server: Awaited<ReturnType<typeof testServer>>;
  let viewer: string;
  beforeAll(async () => {
    server = await testServer({}, { extend: (ctx) => deployPipeline(ctx) });
    viewer = (await createApiKey(server.ctx.db, 'viewer', 'viewer')).key;
    const db = server.ctx.db;
    const t = 1_700_000_000_000;
    const add = (id: string, app: string, status: string, at: number, image: string) =>
      db.run(`INSERT INTO deployments (id, environment, app, commit_sha, reference, image_digest, status, hosts, created_at, updated_at) VALUES (?, 'production', ?, ?, ?, ?, ?, '{"env":"prod"}', ?, ?)`, [id, app, `c-${id}`, `registry.example/acme/${app}@${image}`, image, status, at, at]);
    for (let a = 0; a < APPS; a++) {
      for (let i = 0; i < 10; i++) await add(`old-${a}-${i}`, `app${a}`, 'succeeded', t + i, digest('0'));
      await add(`live-${a}`, `app${a}`, 'succeeded', t + 100 + a, digest('a'));
    }
    // Every host runs app0 right, app1 on an old image, app2 stopped; app3..5 are missing.
    const inventory = JSON.stringify([
      { id: containerIdFor('production', 'app0'), app: 'app0', imageDigest: digest('a'), state: 'running' },
      { id: containerIdFor('production', 'app1'), app: 'app1', imageDigest: digest('0'), state: 'running' },
      { id: containerIdFor('production', 'app2'), app: 'app2', imageDigest: digest('a'), state: 'exited' },
    ]);
    for (let h = 0; h < HOSTS; h++) {
      await db.run(`INSERT INTO hosts (id, name, public_key, labels, facts, containers, enrolled_at) VALUES (?, ?, 'k', ?, '{}', ?, ?)`, [`h${h}`, `host-${h}`, h === HOSTS - 1 ? '{"env":"dev"}' : '{"env":"prod"}', inventory, t]);
    }
  });
  afterAll(() => server.close());

  /** The drift answer, how many times an inventory text was parsed, and the rows read. */
  const drift = async () => {
    const parse = JSON.parse;
    let inventories = 0;
    JSON.parse = ((text: string, reviver?: Parameters<typeof JSON.parse>[1]) => {
      if (typeof text === 'string' && text.startsWith('[{"id":')) inventories++;
      return parse(text, reviver);
    }) as typeof JSON.parse;
    try {
      const { out, rows } = await rowsRead(server.ctx.db, async () => {
        const res = await fetch(`${server.url}/api/v1/drift`, { headers: { authorization: `Bearer ${viewer}` } });
        expect(res.status).toBe(200);
        return (await res.json()) as { inSync: boolean; drift: Array<{ app: string; host: string; reason: string }> };
      });
      return { out, inventories, rows };
    } finally {
      JSON.parse = parse;
    }
  };

  it('answers each matching host\'s drift, parsing each inventory at most once and reading no history row', async () => {
    const first = await drift();
    expect(first.out.inSync).toBe(false);
    const reasons = new Map(first.out.drift.map((d) => [`${d.app}@${d.host}`, d.reason]));
    for (let h = 0; h < HOSTS - 1; h++) {
      expect(reasons.get(`app0@host-${h}`)).toBeUndefined();
      expect(reasons.get(`app1@host-${h}`)).toBe('WRONG_IMAGE');
      expect(reasons.get(`app2@host-${h}`)).toBe('NOT_RUNNING');
      for (let a = 3; a < APPS; a++) expect(reasons.get(`app${a}@host-${h}`)).toBe('MISSING');
    }
    // The dev host matches no selector.
    expect(first.out.drift.filter((d) => d.host === `host-${HOSTS - 1}`)).toEqual([]);
    expect(first.out.drift).toHaveLength((HOSTS - 1) * (APPS - 1));
    // Each host's inventory once (not once per app: APPS × HOSTS); none of the history's rows.
    expect(first.inventories).toBeLessThanOrEqual(HOSTS);
    expect(first.rows.filter((r) => String(r.id).startsWith('old-'))).toEqual([]);
    // Unchanged inventories are not parsed again.
    const again = await drift();
    expect(again.out).toEqual(first.out);
    expect(again.inventories).toBe(0);
  });
});
