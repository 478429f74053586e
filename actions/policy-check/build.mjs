// Bundles the policy check into actions/policy-check/dist/ (committed; runners execute it without
// npm install): main.ts → dist/index.js (what action.yml runs), gitlab-main.ts → dist/gitlab.js.
// Deterministic (no source maps or timestamps, paths relative to the repository root), so a
// rebuild elsewhere gives the same bytes; test/policy/action-dist.test.ts checks the committed
// files are current. The bundle reads policies/schema/*.json from the repository checkout
// (src/policy/schema.ts looks upwards from the bundle).
//
//   node actions/policy-check/build.mjs [--out DIR]
import { build } from 'esbuild';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');

export async function bundlePolicyCheck(outDir = join(here, 'dist')) {
  await build({
    absWorkingDir: root,
    entryPoints: { index: 'actions/policy-check/main.ts', gitlab: 'actions/policy-check/gitlab-main.ts' },
    outdir: outDir,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    minify: true,
    charset: 'utf8',
    legalComments: 'none',
    logLevel: 'warning',
    // CommonJS dependencies (ajv, safe-regex2) call require(): give the ESM bundle one.
    banner: { js: "import { createRequire as __ctCreateRequire } from 'node:module'; const require = __ctCreateRequire(import.meta.url);" },
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--out');
  await bundlePolicyCheck(i > 0 ? resolve(process.argv[i + 1]) : join(here, 'dist'));
}
