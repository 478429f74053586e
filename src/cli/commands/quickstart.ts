import type { Command } from 'commander';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { action, processIo } from '../io.js';
import { runQuickstart } from '../../quickstart/quickstart.js';

/**
 * `ct quickstart`: the whole loop on this machine (src/quickstart/). Runs until Ctrl-C (SIGINT) or
 * SIGTERM, then stops everything it started.
 */
export function register(program: Command): void {
  program
    .command('quickstart')
    .description('one machine, the whole loop: key, two logs, trust store, registry, desired-state repo, deploy server, host; deploys examples/hello')
    .option('--dir <dir>', 'where everything is created and kept (reused by the next run)', 'ct-quickstart')
    .action(
      action(async (o: { dir: string }) => {
        // build/src/cli/commands/ → the checkout (examples/hello, bin/ct.js).
        const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));
        const stop = new Promise<void>((done) => {
          let asked = false;
          const onSignal = () => {
            if (asked) processIo.err('still stopping (waiting for the children to exit)…');
            asked = true;
            done();
          };
          process.on('SIGINT', onSignal);
          process.on('SIGTERM', onSignal);
        });
        return runQuickstart({ dir: resolve(o.dir), repoRoot, stop }, processIo);
      }),
    );
}
