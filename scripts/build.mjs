// Transpiles every TypeScript source to build/ (one file per file, ESM), in well under a second.
// Type checking is `npm run typecheck`; tests and the `ct` binary run the transpiled output.
import { build } from 'esbuild';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

// test/support and test/e2e helpers are built too: benchmarks reuse the same local stand-ins.
const roots = ['src', 'server', 'host', 'actions', 'bench', 'test/support', 'test/e2e'];
const entryPoints = [];
function walk(dir) {
  let names;
  try { names = readdirSync(dir); } catch { return; }
  for (const n of names) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) { if (n !== 'node_modules' && n !== 'dist') walk(p); }
    else if (n.endsWith('.ts') && !n.endsWith('.d.ts') && !n.endsWith('.test.ts')) entryPoints.push(p);
  }
}
roots.forEach(walk);
await build({
  entryPoints,
  outdir: 'build',
  outbase: '.',
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'inline',
  logLevel: 'warning',
});
