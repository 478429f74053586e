// Bundles the action into dist/index.js (what action.yml runs) and the GitLab entry into
// dist/gitlab.js. CI rebuilds both and fails when they differ from what is committed.
// The bundle reads policies/schema/*.json from the repository checkout (src/policy/schema.ts looks upwards).
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  legalComments: 'none',
  logLevel: 'warning',
  // CommonJS dependencies (ajv, safe-regex2) call require(): give the ESM bundle one.
  banner: { js: "import { createRequire as __ctCreateRequire } from 'node:module'; const require = __ctCreateRequire(import.meta.url);" },
};
await build({ ...common, entryPoints: [join(here, 'main.ts')], outfile: join(here, 'dist', 'index.js') });
await build({ ...common, entryPoints: [join(here, 'gitlab-main.ts')], outfile: join(here, 'dist', 'gitlab.js') });
