import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig, type ServerConfig } from '../../server/config.js';
import { startServer, type RunningServer, type StartOptions } from '../../server/start.js';

/** A server on 127.0.0.1 with a throw-away data directory. */
export async function testServer(overrides: Partial<ServerConfig> = {}, opts: StartOptions = {}): Promise<RunningServer & { dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'ct-server-'));
  const config = loadConfig({}, { port: 0, host: '127.0.0.1', dataDir: dir, ...overrides });
  const server = await startServer(config, { log: pino({ level: process.env.CT_DEBUG ? 'debug' : 'silent' }), ...opts });
  return {
    ...server,
    dir,
    async close() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
