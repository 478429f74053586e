/**
 * SQLite: a database of the previous version upgraded to `host_generations` keeps every host's
 * generation (see host-generations-upgrade.ts; the PostgreSQL run is in test/server-pg).
 */
import { describe, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb } from '../../../server/store/db.js';
import { checkGenerationUpgrade } from './host-generations-upgrade.js';

describe('host generations upgrade on SQLite', () => {
  it('keeps every host\'s generation, raises, lifts and removes it as before', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ct-gen-upgrade-'));
    const db = await openDb({ sqlitePath: join(dir, 'ct.db') });
    try {
      await checkGenerationUpgrade(db);
    } finally {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
