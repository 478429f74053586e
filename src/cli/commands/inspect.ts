import type { Command } from 'commander';
import { action, processIo } from '../io.js';
import { formatReport, inspectBundle } from '../../bundle/inspect.js';

/** `ct inspect BUNDLE [--json]`: what a bundle holds, after checking its structure and digests. */
export function register(program: Command): void {
  program
    .command('inspect')
    .description('show what a .ctp bundle (or a legacy 1.0 bundle) holds; checks structure and digests, not signatures')
    .argument('<bundle>', 'the .ctp file')
    .option('--json', 'print the report as JSON')
    .action(
      action(async (bundle: string, opts: { json?: boolean }) => {
        const report = await inspectBundle(bundle);
        processIo.out(opts.json ? JSON.stringify(report, null, 2) : formatReport(report));
      }),
    );
}
