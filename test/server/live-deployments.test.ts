/**
 * `GET /api/v1/deployments?format=evidence` (and policy impact, explain_decision) read the evidence
 * of the live deployment of each (environment, app) only: not of every succeeded deployment ever.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { testServer } from './support.js';
import { createApiKey } from '../../server/auth/api-keys.js';
import { deployPipeline } from '../../server/deploy/wire.js';
import { expectLiveOnly, fillHistory } from './live-history.js';

describe('live deployments without the history\'s evidence (SQLite)', () => {
  let server: Awaited<ReturnType<typeof testServer>>;
  let viewer: string;
  let ids: Awaited<ReturnType<typeof fillHistory>>;
  beforeAll(async () => {
    server = await testServer({}, { extend: (ctx) => deployPipeline(ctx) });
    viewer = (await createApiKey(server.ctx.db, 'viewer', 'viewer')).key;
    ids = await fillHistory(server.ctx.db);
  });
  afterAll(() => server.close());

  it('answers the newest succeeded row of each cell, reading no history row\'s evidence', () => expectLiveOnly(server.url, server.ctx.db, viewer, ids));

  it('finds each cell\'s live row by the first entry of the succeeded-only index, not a walk past newer failed ones', async () => {
    const plan = await server.ctx.db.query<{ detail: string }>(
      "EXPLAIN QUERY PLAN SELECT x.id FROM deployments x WHERE x.app = ? AND x.environment = ? AND x.status = 'succeeded' ORDER BY x.created_at DESC, x.id DESC LIMIT 1", ['web', 'prod'],
    );
    const text = plan.map((p) => p.detail).join('\n');
    expect(text).toContain('deployments_live');
    expect(text).not.toContain('TEMP B-TREE');
  });
});
