// The `ct` entry point: builds the command tree and runs it. Logic lives in the library.
import { buildProgram } from './program.js';

await (await buildProgram(process.argv)).parseAsync(process.argv);
