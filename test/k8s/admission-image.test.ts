/**
 * The admission webhook's container image (scripts/image/build-admission.mjs) as the cluster runs
 * it: built, packed into a bundle by `ct pack`, and its root file system run as the Deployment
 * says — the image's command with the Deployment's `args`, uid 65532, the root file system
 * read-only and a tmpfs at /tmp (a private mount namespace and chroot: nothing of this machine
 * but its network is reachable), the trust store, policies and TLS pair where the Deployment
 * mounts them. It answers /healthz, pins a tag through the registry, fetches and verifies the
 * bundle and judges it with the policies: everything `ct admission serve` needs is in the image.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jsonpatch from 'fast-json-patch';
import { openCtp } from '../../src/bundle/read.js';
import { repoRoot, runCt } from '../support/cli.js';
import { admissionUrl, k8sFixture, type K8sFixture } from './fixture.js';
import { pod, reviewOf, webhookClient, type WebhookClient } from './requests.js';
import { parseYamlDocs } from './schema.js';
import { spdxProblems } from '../attest/spdx-rules.js';
import { startSigstoreMock } from '../support/sigstore-mock.js';
import { GH_ISSUER, GH_SAN, writeKeylessCtp } from '../sigstore/fixtures.js';
import { pushCtp } from '../../src/oci/push.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const deployment = parseYamlDocs(readFileSync(join(repoRoot, 'deploy/kubernetes/deployment.yaml'), 'utf8')).find((o) => o.kind === 'Deployment') as Obj;
const container = deployment.spec.template.spec.containers[0];
const podSecurity = deployment.spec.template.spec.securityContext;

let fx: K8sFixture;
let work: string;
let rootfs: string;
let child: ChildProcess;
let client: WebhookClient;
let stderr = '';
/** Signed keylessly by a private Sigstore (the mock), which the image's public-good root does not trust. */
let keylessRef: string;

beforeAll(async () => {
  fx = await k8sFixture();
  work = mkdtempSync(join(tmpdir(), 'ct-admission-image-'));
  execFileSync(process.execPath, [join(repoRoot, 'scripts/image/build-admission.mjs'), '--out', join(work, 'image')], { stdio: 'pipe' });
  rootfs = join(work, 'image', 'rootfs');
  const m = await startSigstoreMock();
  try {
    await writeKeylessCtp(m, work, 'keyless');
  } finally {
    await m.close();
  }
  const pushed = await pushCtp(join(work, 'keyless.ctp'), `${fx.registry.host}/acme/keyless:1.0.0`, { allowedAddresses: ['127.0.0.1'], plainHttp: true });
  keylessRef = `${fx.registry.host}/acme/keyless@${pushed.imageDigest}`;
}, 120_000);

afterAll(async () => {
  await client?.close();
  if (child && child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  if (work) rmSync(work, { recursive: true, force: true });
  await fx?.cleanup();
});

describe('the admission image', () => {
  it('packs into a bundle whose image runs the Deployment\'s command as its user, read-only, with its packages on record', async () => {
    const r = await runCt(['pack', rootfs, '--out', join(work, 'ct-admission.ctp')]);
    expect(r.code).toBe(0);
    const ctp = await openCtp(join(work, 'ct-admission.ctp'));
    const manifest = ctp.file('manifest.toml').toString('utf8');
    expect(manifest).toMatch(/name = "ct-admission"/);
    expect((await runCt(['inspect', join(work, 'ct-admission.ctp')])).stdout).toContain(`(linux/${process.arch === 'x64' ? 'amd64' : process.arch})`);
    // Not the build machine's CA certificates: its proxy's or company's CAs would be trusted by every cluster.
    expect(existsSync(join(rootfs, 'etc/ssl'))).toBe(false);
    expect(manifest).not.toMatch(/NODE_EXTRA_CA_CERTS/);
    // The runtime's packages are on record where scanners and ct's SBOM look, and the SBOM is one SPDX tools accept.
    const att = await runCt(['attest', join(work, 'ct-admission.ctp'), '--type', 'spdx', '-o', join(work, 'sbom.json')]);
    expect(att.code).toBe(0);
    const sbom = JSON.parse(readFileSync(join(work, 'sbom.json'), 'utf8')).predicate as Obj;
    const names = (sbom.packages as Obj[]).map((p) => p.name);
    expect(names).toEqual(expect.arrayContaining(['libc6', 'libstdc++6']));
    expect(spdxProblems(sbom)).toEqual([]);
    // What runs below is the packed layer, not the build directory.
    const u = await runCt(['unpack', join(work, 'ct-admission.ctp'), '--out', join(work, 'unpacked'), '--rootfs']);
    expect(u.code).toBe(0);
    rootfs = join(work, 'unpacked', 'rootfs');
    expect(existsSync(join(rootfs, 'app/ct.mjs'))).toBe(true);
    expect(container.command).toEqual(['/usr/local/bin/node', '--use-bundled-ca', '/app/ct.mjs']);
    expect(manifest).toContain('command = [ "/usr/local/bin/node", "--use-bundled-ca", "/app/ct.mjs" ]');
    expect(manifest).toContain(`user = "${podSecurity.runAsUser}:${podSecurity.runAsGroup}"`);
    // Only what it needs: the runtime, its libraries and their records, the bundle, schemas, users.
    const top = readdirSync(rootfs).sort();
    expect(top).toEqual(expect.arrayContaining(['app', 'etc', 'usr']));
    expect(top.filter((d) => !['app', 'etc', 'home', 'lib', 'lib64', 'tmp', 'usr', 'var'].includes(d))).toEqual([]);
  }, 120_000);

  it('serves the webhooks from its own root file system, as the Deployment runs it', async () => {
    // The volumes where the Deployment mounts them.
    const etc = join(rootfs, 'etc/ct');
    mkdirSync(join(etc, 'tls'), { recursive: true });
    copyFileSync(fx.tls.cert, join(etc, 'tls/tls.crt'));
    copyFileSync(fx.tls.key, join(etc, 'tls/tls.key'));
    mkdirSync(join(etc, 'trust'), { recursive: true });
    copyFileSync(fx.trustStorePath, join(etc, 'trust/trust-store.json'));
    cpSync(fx.policiesDir, join(etc, 'policies'), { recursive: true });
    // Production also trusts a keyless workflow: its bundles are verified with the image's own
    // public-good root (no --trusted-root in the Deployment).
    const production = join(etc, 'policies/production.policy.yaml');
    writeFileSync(production, readFileSync(production, 'utf8').replace('signers:\n', `signers:\n  - issuer: ${GH_ISSUER}\n    subject: ${GH_SAN}\n`));
    for (const f of ['tls/tls.key', 'tls/tls.crt', 'trust/trust-store.json']) chmodSync(join(etc, f), 0o644);
    expect(container.args.some((a: string) => a.startsWith('--trust-store=/etc/ct/'))).toBe(true);
    const args = [...container.command, ...container.args, '--host', '127.0.0.1', '--port', '0',
      '--allow-registry', fx.registry.host, '--allow-address', '127.0.0.1', '--insecure-registry', fx.registry.host];
    // A private mount namespace: the root read-only, a tmpfs at /tmp, then chroot as the pod's user.
    const script = [
      'set -e',
      'mount --make-rprivate /',
      `mount --bind "$1" "$1"`,
      `mount -o remount,bind,ro "$1"`,
      `mount -t tmpfs -o size=64m tmpfs "$1/tmp"`, // the Deployment's emptyDir
      'root="$1"; shift',
      `exec chroot --userspec=${podSecurity.runAsUser}:${podSecurity.runAsGroup} "$root" "$@"`,
    ].join('\n');
    child = spawn('unshare', ['--mount', 'sh', '-c', script, 'sh', rootfs, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LOG_LEVEL: 'warn' } });
    child.stderr!.on('data', (d) => (stderr += d));
    const url = await admissionUrl(child, 'the image', () => stderr);
    client = webhookClient(url, fx.tls.cert);
    // A tag pinned through the registry, the bundle fetched, verified and judged, the profiles set.
    const object = pod([{ name: 'web', image: fx.tagRef }]);
    const { json } = await client.post('/mutate/production', reviewOf(object));
    expect({ allowed: json.response.allowed, message: json.response.status?.message }).toEqual({ allowed: true, message: undefined });
    const patched = jsonpatch.applyPatch(structuredClone(object), JSON.parse(Buffer.from(json.response.patch, 'base64').toString('utf8')), true, false).newDocument as Obj;
    expect(patched.spec.containers[0].image).toBe(fx.refs.v1);
    const v = (await client.post('/validate/production', reviewOf(patched))).json.response;
    expect({ allowed: v.allowed, message: v.status?.message }).toEqual({ allowed: true, message: undefined });
    const tampered = (await client.post('/validate/production', reviewOf(pod([{ name: 'web', image: fx.refs.tampered }])))).json.response;
    expect(tampered.status.message).toMatch(/^\[(SUBJECT_MISMATCH|DIGEST_MISMATCH|UNCOVERED_FILE)\]/);
    // The public-good root is in the image and read offline: a certificate from another Sigstore
    // is refused by it (not a missing file, not a network error).
    const keyless = (await client.post('/validate/production', reviewOf(pod([{ name: 'web', image: keylessRef }])))).json.response;
    expect(keyless.allowed).toBe(false);
    expect(keyless.status.message).toMatch(/^\[UNTRUSTED_ROOT\]/);
    // Nothing was written outside /tmp: the root is read-only.
    expect(stderr).not.toMatch(/EROFS|read-only file system/i);
  }, 120_000);
});
