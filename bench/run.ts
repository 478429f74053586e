// `npm run bench`: runs every benchmark module (or those named on the command line) and prints
// each figure with its ratio to a baseline measured in the same run.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatResult, meetsTarget, type BenchResult } from './harness.js';

const here = dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const modules = readdirSync(here)
  .filter((f) => f.endsWith('.bench.js'))
  .filter((f) => only.length === 0 || only.some((o) => f.startsWith(o)))
  .sort();

let missed = 0;
for (const file of modules) {
  const mod = (await import(join(here, file))) as { run: () => Promise<BenchResult[]> };
  console.log(`# ${file.replace(/\.bench\.js$/, '')}`);
  try {
    for (const r of await mod.run()) {
      console.log(formatResult(r));
      if (!meetsTarget(r)) missed++;
    }
  } catch (e) {
    missed++;
    console.log(`error: ${(e as Error).stack}`);
  }
}
console.log(missed ? `${missed} benchmark(s) missed their target` : 'all benchmarks met their targets');
