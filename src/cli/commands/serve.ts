import type { Command } from 'commander';
import { action, processIo } from '../io.js';

/**
 * `ct serve` (also `npm start`): the deploy server. The server lives outside src/, so it is
 * loaded by path at run time; the library never imports it.
 */
export function register(program: Command): void {
  program
    .command('serve')
    .description('run the deploy server (config: CT_CONFIG file, PORT, DATABASE_URL; every setting: docs/server.md)')
    .action(
      action(async () => {
        const main = new URL('../../../server/main.js', import.meta.url).href;
        const { serveFromEnvironment } = (await import(main)) as { serveFromEnvironment: (io: typeof processIo) => Promise<number> };
        return serveFromEnvironment(processIo);
      }),
    );
}
