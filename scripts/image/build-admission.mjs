// Builds the admission webhook's container image (deploy/kubernetes/deployment.yaml runs it) as a
// directory that `ct pack` turns into a signed bundle's OCI image, then pushed like any bundle:
//
//   node scripts/image/build-admission.mjs --out DIR [--version V]
//   ct pack DIR --out ct-admission.ctp && ct sign … && ct push ct-admission.ctp registry.example.com/cerro-torre/ct-admission:V
//
// Contents, nothing more: the node binary this script runs on and the shared libraries it links
// (ldd, and glibc's name-service modules where this glibc still has them apart: before 2.34 a
// host name lookup loads them at run time, which ldd does not show), `ct admission` bundled into
// one file (esbuild; server/admission/image-entry.ts) with its dependencies' license notices,
// the policy schemas it validates policies with, the public-good Sigstore root's seed (offline),
// and a passwd/group entry for uid 65532 (the Deployment's runAsUser). No shell, no package manager, and not this machine's CA certificates:
// node trusts the public roots it ships, and a build machine's own CAs (a proxy's, a company's)
// would be trusted by every cluster running the image; a private registry's CA is mounted and
// named by NODE_EXTRA_CA_CERTS in the Deployment (docs/kubernetes.md "The image").
// The image's command is `/usr/local/bin/node --use-bundled-ca /app/ct.mjs` (the roots node ships,
// whatever the build machine's node was configured to read); the Deployment's `args` follow it.
// A node built against the system's OpenSSL (Fedora, nixpkgs, Homebrew) has no roots of its own
// and reads them from /etc/ssl, which the image does not have: such a node is refused.
//
// Architecture: the machine's (the node binary is copied), written into ct.toml so that `ct pack`
// labels the image with it wherever it runs; build on an arm64 machine for arm64.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const UID = 65532;
/** Node's process.arch → the OCI platform name. */
const OCI_ARCH = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

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

/**
 * What the copied files are, where the build machine's package manager knows: their dpkg
 * stanzas in /var/lib/dpkg/status.d/<package> (as distroless images keep them) and each package's
 * copyright file. `ct sign`'s SBOM, Trivy and Grype read that database: without it the image's
 * node, glibc and libstdc++ would be invisible to scanners. Files no package owns (a node from a
 * tarball) are named in the returned list.
 */
function recordPackages(rootfs, files) {
  const owners = new Map();
  const unowned = [];
  for (const f of files) {
    let out = '';
    try {
      out = execFileSync('dpkg-query', ['-S', realpathSync(f)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      try {
        out = execFileSync('dpkg-query', ['-S', f], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      } catch {
        unowned.push(f);
        continue;
      }
    }
    const line = out.split('\n').find((l) => l.trim() && !l.startsWith('diversion by'));
    if (!line) {
      unowned.push(f);
      continue;
    }
    const pkg = line.split(':')[0].split(',')[0].trim();
    const arch = /^[^:]+:([a-z0-9]+):/.exec(line)?.[1];
    owners.set(arch ? `${pkg}:${arch}` : pkg, pkg);
  }
  const dir = join(rootfs, 'var/lib/dpkg/status.d');
  for (const [spec, pkg] of owners) {
    const stanza = execFileSync('dpkg-query', ['-s', spec], { encoding: 'utf8' });
    // The fields a scanner reads; not the host's conffiles or descriptions.
    const keep = stanza.split('\n').filter((l) => /^(Package|Status|Priority|Section|Maintainer|Architecture|Multi-Arch|Source|Version|Homepage):/.test(l));
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, pkg), `${keep.join('\n')}\n`);
    const copyright = `/usr/share/doc/${pkg}/copyright`;
    if (existsSync(copyright)) copyInto(rootfs, copyright);
  }
  return unowned;
}

export async function buildAdmissionImage(out, { version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version } = {}) {
  if (process.config.variables.node_shared_openssl) throw new Error(`${process.execPath} uses the system's OpenSSL and its CA store, which the image does not carry: build with a node from nodejs.org or NodeSource`);
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
    // The bundled packages' license notices, beside it (/app/ct.mjs.LEGAL.txt): MIT, ISC, Apache
    // and BSD terms ask that they go with the code.
    legalComments: 'external',
    charset: 'utf8',
    // ESM output still meets CommonJS dependencies that call require() on Node built-ins.
    banner: { js: "import { createRequire as __ctCreateRequire } from 'node:module'; const require = __ctCreateRequire(import.meta.url);" },
    external: ['better-sqlite3', 'pg-native'],
    logLevel: 'warning',
    metafile: true,
  });
  const natives = Object.keys(result.metafile.inputs).filter((p) => /node_modules\/(better-sqlite3|pg)\//.test(p));
  if (natives.length) throw new Error(`the deploy server's database reached the admission image: ${natives.slice(0, 5).join(', ')}`);
  // The public-good Sigstore root, offline: src/verify/sigstore/trusted-root.ts reads the seed
  // @sigstore/tuf ships through require.resolve from /app/ct.mjs, so the package's manifest, seed
  // and license sit where node looks (a JSON data file esbuild does not bundle).
  for (const f of ['package.json', 'seeds.json', 'LICENSE']) copyInto(rootfs, join(root, 'node_modules/@sigstore/tuf', f), join('app/node_modules/@sigstore/tuf', f));
  // Policy files are validated against these (src/policy/schema.ts looks for policies/schema beside the code).
  for (const f of readdirSync(join(root, 'policies', 'schema')).filter((f) => f.endsWith('.json'))) copyInto(rootfs, join(root, 'policies', 'schema', f), join('app', 'policies', 'schema', f));
  copyInto(rootfs, process.execPath, '/usr/local/bin/node');
  chmodSync(join(rootfs, 'usr/local/bin/node'), 0o755);
  const libs = sharedLibraries(process.execPath);
  for (const lib of libs) copyInto(rootfs, lib);
  const libc = libs.find((l) => /\/libc\.so\.6$/.test(l));
  if (libc) for (const nss of ['libnss_files.so.2', 'libnss_dns.so.2', 'libresolv.so.2']) if (existsSync(join(dirname(libc), nss))) copyInto(rootfs, join(dirname(libc), nss));
  const unrecorded = recordPackages(rootfs, [process.execPath, ...libs]);
  // Said, not silent: scanners and the SBOM will not see these.
  for (const f of unrecorded) console.error(`warning: ${f} belongs to no package this machine's dpkg knows: the image's SBOM and scanners will not list it`);
  // Which distribution the package records are of (scanners and ct's SBOM read it).
  if (existsSync('/etc/os-release')) copyInto(rootfs, '/etc/os-release', '/usr/lib/os-release');
  mkdirSync(join(rootfs, 'etc'), { recursive: true });
  // /etc/hosts first (the kubelet writes it, hostAliases too), then DNS.
  writeFileSync(join(rootfs, 'etc/nsswitch.conf'), 'hosts: files dns\n');
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
      'command = ["/usr/local/bin/node", "--use-bundled-ca", "/app/ct.mjs"]',
      'ports = ["8443/tcp"]',
      '',
      '[image]',
      `architecture = "${OCI_ARCH[process.arch] ?? process.arch}"`,
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
