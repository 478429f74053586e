import { afterAll, beforeAll, describe, it } from '@jest/globals';
import { testServer } from './support.js';
import { createApiKey } from '../../server/auth/api-keys.js';
import { expectWideOverview, fillWide } from './overview-wide.js';

describe('overview with many environments (SQLite)', () => {
  let server: Awaited<ReturnType<typeof testServer>>;
  let viewer: string;
  beforeAll(async () => {
    server = await testServer();
    viewer = (await createApiKey(server.ctx.db, 'viewer', 'viewer')).key;
    await fillWide(server.ctx.db);
  });
  afterAll(() => server.close());

  it('answers 200 with every cell when apps × environments exceed the bound-parameter limit', () => expectWideOverview(server.url, viewer));
});
