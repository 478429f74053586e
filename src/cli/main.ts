// The `ct` entry point: builds the command tree and runs it. Logic lives in the library.
import { exitCodeFor } from '../core/codes.js';
import { processIo } from './io.js';
import { buildProgram, unknownCommand } from './program.js';

const unknown = unknownCommand(process.argv);
if (unknown) {
  processIo.err(`error[UNKNOWN_COMMAND]: ${unknown.message}`);
  process.exitCode = exitCodeFor('UNKNOWN_COMMAND');
} else {
  await (await buildProgram(process.argv)).parseAsync(process.argv);
}
