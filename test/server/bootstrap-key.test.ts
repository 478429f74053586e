/**
 * The bootstrap admin key (CT_ADMIN_API_KEY) is the configured one: rotating it revokes the old
 * one, and so does removing it. There is no other way to revoke it; before, a server restarted
 * without the variable (because the key leaked, or bootstrap was over) still took the old key as
 * admin, forever.
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

async function statusWith(adminApiKey: string | undefined, key: string): Promise<number> {
  const server = await startServer(loadConfig({}, { port: 0, host: '127.0.0.1', dataDir: dir, ...(adminApiKey ? { adminApiKey } : {}) }), { log: pino({ level: 'silent' }) });
  try {
    return (await fetch(`${server.url}/api/v1/session`, { headers: { authorization: `Bearer ${key}` } })).status;
  } finally {
    await server.close();
  }
}

describe('bootstrap admin key lifecycle', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a removed bootstrap key stops working; configured again, it works again', async () => {
    expect(await statusWith(OLD, OLD)).toBe(200);
    // Rotated: the old one is refused (as before).
    expect(await statusWith(NEW, OLD)).toBe(401);
    expect(await statusWith(NEW, NEW)).toBe(200);
    // Removed from the configuration: the last one is refused too.
    expect(await statusWith(undefined, NEW)).toBe(401);
    // An operator who sets a key again gets a working key.
    expect(await statusWith(NEW, NEW)).toBe(200);
  });
});
