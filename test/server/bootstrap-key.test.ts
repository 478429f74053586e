/**
 * The bootstrap admin key (CT_ADMIN_API_KEY) is accepted only as the one the answering server is
 * configured with: removing it stops it working there; rotating it revokes the old one for good
 * (a key configured again after it was rotated out stays refused). Before, a server restarted
 * without the variable (because the key leaked, or bootstrap was over) still took the old key as
 * admin, forever. Replicas configured differently: test/server-pg/configured-trust.test.ts.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig } from '../../server/config.js';
import { startServer } from '../../server/start.js';

const dir = mkdtempSync(join(tmpdir(), 'ct-bootstrap-key-'));
const OLD = `ctk_${'b0'.repeat(24)}`;
const NEW = `ctk_${'c1'.repeat(24)}`;

const warnings: string[] = [];
const log = pino({ level: 'warn' }, { write: (line: string) => void warnings.push((JSON.parse(line) as { msg: string }).msg) });

async function statusWith(adminApiKey: string | undefined, key: string): Promise<number> {
  const server = await startServer(loadConfig({}, { port: 0, host: '127.0.0.1', dataDir: dir, ...(adminApiKey ? { adminApiKey } : {}) }), { log });
  try {
    return (await fetch(`${server.url}/api/v1/session`, { headers: { authorization: `Bearer ${key}` } })).status;
  } finally {
    await server.close();
  }
}

describe('bootstrap admin key lifecycle', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a removed bootstrap key stops working; configured again, it works again; a rotated-out key stays refused', async () => {
    expect(await statusWith(OLD, OLD)).toBe(200);
    // Rotated: the old one is refused (as before).
    expect(await statusWith(NEW, OLD)).toBe(401);
    expect(await statusWith(NEW, NEW)).toBe(200);
    // Removed from the configuration: the last one is refused too, and the start says so.
    expect(warnings.filter((w) => w.includes('CT_ADMIN_API_KEY is not set'))).toHaveLength(0);
    expect(await statusWith(undefined, NEW)).toBe(401);
    expect(warnings.filter((w) => w.includes('CT_ADMIN_API_KEY is not set'))).toHaveLength(1);
    // An operator who sets a key again gets a working key.
    expect(await statusWith(NEW, NEW)).toBe(200);
    // The rotated-out key (it may have leaked) is not brought back by configuring it again.
    expect(await statusWith(OLD, OLD)).toBe(401);
    expect(await statusWith(NEW, NEW)).toBe(200);
  });
});
