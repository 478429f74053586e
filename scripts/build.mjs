// Transpiles every TypeScript source to build/ (one file per file, ESM), in well under a second.
// Type checking is `npm run typecheck`; tests and the `ct` binary run the transpiled output.
import { build as esbuild } from 'esbuild';
import { mkdirSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Buffer } from 'node:buffer';

// Outputs are written only when their bytes change, each through a temporary file renamed into
// place: tests that build again (they need build/ for scripts they spawn) run beside others
// whose `ct` processes and workers are loading build/ at that moment, and esbuild's own writes
// (truncate, then write) let such a process read an empty or half-written module.
function writeIfChanged(path, bytes) {
  try {
    if (readFileSync(path).equals(bytes)) return;
  } catch {
    // not there yet
  }
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, path);
}
async function build(options) {
  const result = await esbuild({ ...options, write: false });
  for (const f of result.outputFiles) writeIfChanged(f.path, Buffer.from(f.contents));
  return result;
}

// test/support, test/e2e and test/k8s helpers are built too: benchmarks reuse the same local stand-ins.
const roots = ['src', 'server', 'host', 'actions', 'bench', 'test/support', 'test/e2e', 'test/k8s'];
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

// The dashboard (ui/): one minified browser bundle and one stylesheet, served by the deploy
// server from build/ui (server/ui/routes.ts); nothing is loaded from elsewhere at run time.
await build({
  entryPoints: { app: 'ui/src/main.ts' },
  outdir: 'build/ui',
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
});
// boot.js: a few hundred bytes run from <head> that start the first page's API calls while
// app.js downloads (ui/src/first-load.ts).
await build({ entryPoints: { boot: 'ui/src/boot.ts' }, outdir: 'build/ui', bundle: true, format: 'iife', platform: 'browser', target: 'es2022', minify: true, legalComments: 'none', logLevel: 'warning' });
await build({ entryPoints: { app: 'ui/style.css' }, outdir: 'build/ui', bundle: true, minify: true, logLevel: 'warning' });
writeIfChanged(join(process.cwd(), 'build/ui/index.html'), readFileSync('ui/index.html'));
