// `npm run bench`: runs every benchmark module (or those named on the command line) and prints
// each figure with its ratio to a baseline measured in the same run.
//
// Each module runs in a process of its own, one after the other: modules run in one process
// measured each other's leftovers (the heap a previous module grew, its JIT state, garbage
// collections it triggered), so a CPU-bound benchmark's figure depended on which ran before it
// (the VCS ratio 1.32× after the Sigstore and server modules, 1.20× alone, same code and minute).
// Children get --expose-gc, so a module can collect before each timed section (sigstore does).
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatResult, meetsTarget, type BenchResult } from './harness.js';

const here = dirname(fileURLToPath(import.meta.url));
const self = fileURLToPath(import.meta.url);

/** Child mode: runs one module, prints its results and, last, how many missed (`missed N`). */
async function runOne(file: string): Promise<void> {
  const mod = (await import(join(here, file))) as { run: () => Promise<BenchResult[]> };
  let missed = 0;
  try {
    for (const r of await mod.run()) {
      console.log(formatResult(r));
      if (!meetsTarget(r)) missed++;
    }
  } catch (e) {
    missed++;
    console.log(`error: ${(e as Error).stack}`);
  }
  console.log(`missed ${missed}`);
}

if (process.argv[2] === '--one') {
  await runOne(process.argv[3]);
  process.exit(0);
}

const only = process.argv.slice(2);
const modules = readdirSync(here)
  .filter((f) => f.endsWith('.bench.js'))
  .filter((f) => only.length === 0 || only.some((o) => f.startsWith(o)))
  .sort();

let missed = 0;
for (const file of modules) {
  console.log(`# ${file.replace(/\.bench\.js$/, '')}`);
  const child = spawnSync(process.execPath, [...process.execArgv, '--expose-gc', self, '--one', file], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const lines = (child.stdout ?? '').split('\n').filter((l) => l !== '');
  const last = /^missed (\d+)$/.exec(lines.at(-1) ?? '');
  for (const l of last ? lines.slice(0, -1) : lines) console.log(l);
  if (!last) {
    missed++;
    console.log(`error: the ${file} process ended without its results (status ${child.status}, signal ${child.signal})`);
  } else missed += Number(last[1]);
}
console.log(missed ? `${missed} benchmark(s) missed their target` : 'all benchmarks met their targets');
