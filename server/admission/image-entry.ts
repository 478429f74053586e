/**
 * Entry of the admission webhook's container image (scripts/image/build-admission.mjs bundles it
 * into one file, `/usr/local/bin/ct` in the image): `ct admission …` only. The server is imported
 * here, not loaded by path as the full `ct` does, so that it is in the bundle; nothing else of the
 * deploy server (SQLite, git, the dashboard) is.
 */
import { Command } from 'commander';
import { register } from '../../src/cli/commands/admission.js';
import { exitCodeFor } from '../../src/core/codes.js';
import { processIo } from '../../src/cli/io.js';
import { serveAdmission } from './main.js';

const program = new Command('ct').description('Cerro Torre admission webhooks (container image: `ct admission serve`)');
register(program, { serve: serveAdmission as (o: unknown, io: typeof processIo) => Promise<number> });
if (process.argv[2] !== undefined && process.argv[2] !== 'admission' && !process.argv[2].startsWith('-')) {
  processIo.err(`error[UNKNOWN_COMMAND]: this image runs \`ct admission\` only, not ${JSON.stringify(process.argv[2].slice(0, 64))}`);
  process.exitCode = exitCodeFor('UNKNOWN_COMMAND');
} else {
  await program.parseAsync(process.argv);
}
