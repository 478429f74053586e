// Bundles the GitHub Actions into dist/ (committed; runners execute it without npm install):
// actions/build → dist/index.js (the root action.yml), actions/verify and actions/deploy →
// dist/<name>/index.js, the GitLab entry → dist/gitlab/index.js. ESM (the package is "type": "module" and @actions/core 3 is ESM-only),
// platform node, every dependency inlined except native modules, which the action path must not
// need. Deterministic: no source maps, no timestamps, paths relative to the repository, so a
// rebuild into another directory gives the same bytes (test/action/dist.test.ts).
//
//   node scripts/bundle-actions.mjs [--out DIR]
import { build } from 'esbuild';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Entry points: output name (relative to the out dir, without .js) → source. Listed, not
 * discovered: actions/policy-check bundles itself (actions/policy-check/dist).
 */
export function actionEntries() {
  return {
    index: 'actions/build/index.ts',
    'verify/index': 'actions/verify/index.ts',
    'deploy/index': 'actions/deploy/index.ts',
    'promote/index': 'actions/promote/index.ts',
    // The GitLab CI entry runs the same actions from templates/*.yml.
    'gitlab/index': 'actions/build/gitlab-main.ts',
  };
}

// ESM output still meets CommonJS dependencies that call require() on Node built-ins.
const banner = "import { createRequire as __ctCreateRequire } from 'node:module'; const require = __ctCreateRequire(import.meta.url);";

export async function bundleActions(outDir = join(root, 'dist')) {
  const result = await build({
    absWorkingDir: root,
    entryPoints: actionEntries(),
    outdir: outDir,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    splitting: false,
    minify: true,
    keepNames: false,
    legalComments: 'none',
    charset: 'utf8',
    banner: { js: banner },
    external: ['better-sqlite3', 'pg-native'],
    logLevel: 'warning',
    metafile: true,
  });
  const natives = Object.keys(result.metafile.inputs).filter((p) => p.includes('node_modules/better-sqlite3/'));
  if (natives.length) throw new Error(`native module reached the action bundle: ${natives.join(', ')}`);
  return result;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--out');
  const out = i > 0 ? resolve(process.argv[i + 1]) : join(root, 'dist');
  const r = await bundleActions(out);
  for (const [file, o] of Object.entries(r.metafile.outputs)) console.log(`${file} ${(o.bytes / 1024).toFixed(0)} KiB`);
  // The policy check bundles itself, but from the same sources (src/): regenerating one set of
  // committed bundles and not the other left actions/policy-check/dist stale after src/ changes.
  if (i < 0) {
    const { bundlePolicyCheck } = await import('../actions/policy-check/build.mjs');
    await bundlePolicyCheck();
    console.log('actions/policy-check/dist regenerated');
  }
}
