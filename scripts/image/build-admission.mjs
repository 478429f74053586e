// Builds the admission webhook's container image (deploy/kubernetes/deployment.yaml runs it) as a
// directory that `ct pack` turns into a signed bundle's OCI image, then pushed like any bundle:
//
//   node scripts/image/build-admission.mjs --out DIR [--version V]
//   ct pack DIR --out ct-admission.ctp && ct sign … && ct push ct-admission.ctp registry.example.com/cerro-torre/ct-admission:V
//
// Contents, nothing more: the node binary this script runs on and the shared libraries it links
// (ldd), `ct admission` bundled into one file (esbuild; server/admission/image-entry.ts), the
// policy schemas it validates policies with, this machine's CA certificates (registries over
// HTTPS), and a passwd/group entry for uid 65532 (the Deployment's runAsUser). No shell, no
// package manager. The image's command is `/usr/local/bin/node /app/ct.mjs`; the Deployment's
// `args` (`admission serve …`) follow it.
//
// Architecture: the machine's (the node binary is copied); build on an arm64 machine for arm64.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const UID = 65532;

/** The shared libraries `file` needs, with the dynamic loader, as absolute paths (ldd's output). */
function sharedLibraries(file) {
  const out = execFileSync('ldd', [file], { encoding: 'utf8' });
  const libs = [];
  for (const line of out.split('\n')) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1]);
  }
  if (!libs.some((l) => /ld-linux|ld-musl/.test(l))) throw new Error(`ldd ${file}: no dynamic loader found in\n${out}`);
  return libs;
}

/** Copies `from` to the same path under `rootfs`, following links (the image holds files, not host links). */
function copyInto(rootfs, from, to = from) {
  const dest = join(rootfs, to);
  mkdirSync(dirname(dest), { recursive: true });
  copyFileSync(realpathSync(from), dest);
  return dest;
}

export async function buildAdmissionImage(out, { version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version } = {}) {
  rmSync(out, { recursive: true, force: true });
  const rootfs = join(out, 'rootfs');
  mkdirSync(join(rootfs, 'app'), { recursive: true });
  const result = await build({
    absWorkingDir: root,
    entryPoints: ['server/admission/image-entry.ts'],
    outfile: join(rootfs, 'app', 'ct.mjs'),
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    minify: true,
    legalComments: 'none',
    charset: 'utf8',
    // ESM output still meets CommonJS dependencies that call require() on Node built-ins.
    banner: { js: "import { createRequire as __ctCreateRequire } from 'node:module'; const require = __ctCreateRequire(import.meta.url);" },
    external: ['better-sqlite3', 'pg-native'],
    logLevel: 'warning',
    metafile: true,
  });
  const natives = Object.keys(result.metafile.inputs).filter((p) => /node_modules\/(better-sqlite3|pg)\//.test(p));
  if (natives.length) throw new Error(`the deploy server's database reached the admission image: ${natives.slice(0, 5).join(', ')}`);
  // Policy files are validated against these (src/policy/schema.ts looks for policies/schema beside the code).
  for (const f of readdirSync(join(root, 'policies', 'schema')).filter((f) => f.endsWith('.json'))) copyInto(rootfs, join(root, 'policies', 'schema', f), join('app', 'policies', 'schema', f));
  copyInto(rootfs, process.execPath, '/usr/local/bin/node');
  chmodSync(join(rootfs, 'usr/local/bin/node'), 0o755);
  for (const lib of sharedLibraries(process.execPath)) copyInto(rootfs, lib);
  if (existsSync('/etc/ssl/certs/ca-certificates.crt')) copyInto(rootfs, '/etc/ssl/certs/ca-certificates.crt');
  mkdirSync(join(rootfs, 'etc'), { recursive: true });
  writeFileSync(join(rootfs, 'etc/passwd'), `root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:${UID}:${UID}:nonroot:/home/nonroot:/sbin/nologin\n`);
  writeFileSync(join(rootfs, 'etc/group'), `root:x:0:\nnonroot:x:${UID}:\n`);
  for (const d of ['tmp', 'home/nonroot', 'etc/ct']) mkdirSync(join(rootfs, d), { recursive: true });
  chmodSync(join(rootfs, 'tmp'), 0o1777);
  writeFileSync(
    join(rootfs, 'ct.toml'),
    [
      'name = "ct-admission"',
      `version = "${version}"`,
      '',
      '[runtime]',
      `user = "${UID}:${UID}"`,
      'read_only_rootfs = true',
      'command = ["/usr/local/bin/node", "/app/ct.mjs"]',
      'ports = ["8443/tcp"]',
      '',
      '[runtime.env]',
      'NODE_EXTRA_CA_CERTS = "/etc/ssl/certs/ca-certificates.crt"',
      '',
    ].join('\n'),
  );
  return { rootfs, bytes: result.metafile.outputs[Object.keys(result.metafile.outputs)[0]].bytes };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (name) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const out = resolve(arg('--out') ?? 'ct-admission-image');
  const version = arg('--version');
  const r = await buildAdmissionImage(out, version ? { version } : {});
  console.log(`${r.rootfs}: ct admission (${(r.bytes / 1024).toFixed(0)} KiB), node ${process.version}, its libraries`);
  console.log(`next: ct pack ${r.rootfs} --out ct-admission.ctp, sign it, push it, and set the Deployment's image to it`);
}
