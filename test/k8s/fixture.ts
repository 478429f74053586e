/**
 * Shared set-up of the Kubernetes tests: signed .ctp bundles (seccomp + AppArmor profiles, a
 * [runtime] table with a capability and a port) pushed to a real docker-registry, two
 * transparency logs by two operators, a trust store, policies for five environments, and a
 * self-signed TLS certificate for the webhook.
 *
 * - `hello` 1.0.0 and 2.0.0: signed; both pushed under the tag `acme/hello:stable` in turn
 *   (`moveTag` re-points it), so a tag can resolve differently between mutate and validate;
 *   3.0.0 (`acme/hello:3.0.0`) asks CAP_SYS_ADMIN beside CAP_NET_BIND_SERVICE;
 * - `tampered`: the signed 1.0.0 with a capability raised in manifest.toml afterwards.
 * Policies: `production` strict (this key, SLSA + SPDX, quorum 2, RuntimeDefault-level seccomp,
 * CAP_NET_BIND_SERVICE allowed), `quickstart` as production with no capabilities rule (none
 * granted), `bind` permissive allowing NET_BIND_SERVICE only, `staging` permissive with an unmet
 * review requirement (a warning), `locked` strict for another key.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packCtp } from '../../src/bundle/pack/pack.js';
import { rewriteCtp } from '../../src/bundle/write.js';
import { openCtp } from '../../src/bundle/read.js';
import { signCtp } from '../../src/attest/sign-ctp.js';
import { pushCtp } from '../../src/oci/push.js';
import { startLogServer, type LogServer } from '../../src/tlog/server.js';
import { keyIdOf, spkiBase64 } from '../../src/trust/keyid.js';
import { parseTrustStore, trustStoreDigest } from '../../src/trust/store.js';
import { runtimeDefault } from '../../src/profiles/seccomp/index.js';
import type { TrustMaterial } from '../../src/verify/report.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';

export const APPARMOR = [
  '#include <tunables/global>',
  'profile hello flags=(attach_disconnected) {',
  '  capability net_bind_service,',
  '  network inet tcp,',
  '  /app/** r,',
  '  /bin/busybox ix,',
  '  /tmp/** rw,',
  '}',
  '',
].join('\n');

export interface K8sFixture {
  dir: string;
  registry: TestRegistry;
  logs: LogServer[];
  trustStorePath: string;
  trust: TrustMaterial;
  policiesDir: string;
  /** Pinned references `host/repo@sha256:…`. */
  /** v3: the manifest asks CAP_NET_BIND_SERVICE and CAP_SYS_ADMIN. */
  refs: { v1: string; v2: string; v3: string; tampered: string };
  digests: { v1: string; v2: string; v3: string; tampered: string };
  bundles: { v1: string; v2: string; v1Path: string };
  /** `host/acme/hello:stable`. */
  tagRef: string;
  moveTag(to: 'v1' | 'v2'): Promise<void>;
  tls: { cert: string; key: string; dir: string };
  cleanup(): Promise<void>;
}

/** The https URL a started `ct admission serve` prints; rejects with its stderr if it exits first. */
export function admissionUrl(child: ChildProcess, what: string, stderr: () => string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on (https:\/\/[\d.:]+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`${what} exited ${code}: ${stderr()}`)));
  });
}

/** A self-signed certificate for 127.0.0.1 (openssl, as in the webhook's Secret). */
export function makeCert(dir: string, name = 'tls'): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { cert, key };
}

export async function k8sFixture(): Promise<K8sFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'ct-k8s-'));
  const p = (n: string) => join(dir, n);
  mkdirSync(p('security'));
  writeFileSync(p('security/seccomp.json'), JSON.stringify(runtimeDefault({ arch: 'amd64', capabilities: ['CAP_NET_BIND_SERVICE'] })));
  writeFileSync(p('security/apparmor'), APPARMOR);
  const pack = async (version: string, caps = '"CAP_NET_BIND_SERVICE"') => {
    mkdirSync(p(`app-${version}/app`), { recursive: true });
    writeFileSync(p(`app-${version}/app/hello.txt`), `hello ${version}\n`);
    writeFileSync(
      p(`app-${version}/ct.toml`),
      `name = "hello"\nversion = "${version}"\n\n[runtime]\nuser = "65534:65534"\nread_only_rootfs = true\ncapabilities = [${caps}]\nnetwork = "bridge"\nports = ["8080/tcp"]\ncommand = ["/app/run"]\n`,
    );
    await packCtp({ from: { dir: p(`app-${version}`) }, out: p(`hello-${version}.ctp`), mtime: 0, securityDir: p('security') });
  };
  await pack('1.0.0');
  await pack('2.0.0');
  // Asks a capability beside NET_BIND_SERVICE: granted only where a policy allows it.
  await pack('3.0.0', '"CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"');

  const key = generateKeyPairSync('ed25519');
  const keyId = keyIdOf(key.publicKey);
  const logs = [
    await startLogServer({ db: p('log1.db'), logId: 'log-one', operator: 'Operator One' }),
    await startLogServer({ db: p('log2.db'), logId: 'log-two', operator: 'Operator Two' }),
  ];
  const storeJson = {
    version: 1, id: 'k8s', updated: '2026-01-01T00:00:00Z',
    keys: { builders: [{ id: keyId, algorithm: 'ed25519', publicKey: spkiBase64(key.publicKey), validFrom: '2024-01-01T00:00:00Z' }] },
    thresholds: {},
    logs: Object.fromEntries(logs.map((l) => [l.logId, { operator: l.operator, publicKey: l.publicKey, url: l.url, algorithm: 'ed25519' }])),
  };
  writeFileSync(p('trust.json'), JSON.stringify(storeJson));
  const store = parseTrustStore(JSON.stringify(storeJson));
  for (const v of ['1.0.0', '2.0.0', '3.0.0']) await signCtp(p(`hello-${v}.ctp`), { key: key.privateKey, logs: logs.map((l) => ({ id: l.logId, url: l.url })), out: p(`signed-${v}.ctp`) });
  const signed = await openCtp(p('signed-1.0.0.ctp'));
  const manifest = signed.file('manifest.toml').toString('utf8').replace('capabilities = [ "CAP_NET_BIND_SERVICE" ]', 'capabilities = [ "CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN" ]').replace('capabilities = ["CAP_NET_BIND_SERVICE"]', 'capabilities = ["CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"]');
  if (!manifest.includes('CAP_SYS_ADMIN')) throw new Error('fixture: could not tamper with manifest.toml');
  await rewriteCtp(p('signed-1.0.0.ctp'), p('tampered.ctp'), { add: { 'manifest.toml': Buffer.from(manifest) } });

  mkdirSync(p('policies'));
  writeFileSync(p('policies/production.policy.yaml'), ['apiVersion: cerro-torre.dev/v2', 'kind: Policy', 'name: production', 'mode: strict', 'match:', '  environments: [production]', 'signers:', `  - keyId: ${keyId}`, 'attestations:', '  - predicateType: https://slsa.dev/provenance/v1', '  - predicateType: https://spdx.dev/Document', 'logQuorum: 2', 'runtime:', '  seccomp:', '    profile: runtime-default', '  capabilities:', '    allowed: [CAP_NET_BIND_SERVICE]', ''].join('\n'));
  // As the quickstart policy: a runtime section without a capabilities rule grants none.
  writeFileSync(p('policies/quickstart.policy.yaml'), ['apiVersion: cerro-torre.dev/v2', 'kind: Policy', 'name: quickstart', 'mode: strict', 'match:', '  environments: [quickstart]', 'signers:', `  - keyId: ${keyId}`, 'attestations:', '  - predicateType: https://slsa.dev/provenance/v1', 'logQuorum: 2', 'runtime:', '  seccomp:', '    profile: runtime-default', ''].join('\n'));
  // Permissive, allowing NET_BIND_SERVICE only: a bundle asking more is admitted (with a warning) and granted the allowed part.
  writeFileSync(p('policies/bind.policy.yaml'), ['apiVersion: cerro-torre.dev/v2', 'kind: Policy', 'name: bind', 'mode: permissive', 'match:', '  environments: [bind]', 'signers:', `  - keyId: ${keyId}`, 'attestations:', '  - predicateType: https://slsa.dev/provenance/v1', 'logQuorum: 2', 'runtime:', '  capabilities:', '    allowed: [NET_BIND_SERVICE]', ''].join('\n'));
  writeFileSync(p('policies/staging.policy.yaml'), ['apiVersion: cerro-torre.dev/v2', 'kind: Policy', 'name: staging', 'mode: permissive', 'match:', '  environments: [staging]', 'signers:', `  - keyId: ${keyId}`, 'attestations:', '  - predicateType: https://slsa.dev/provenance/v1', '  - predicateType: https://verified-container.org/v1/review', 'logQuorum: 2', ''].join('\n'));
  const other = keyIdOf(generateKeyPairSync('ed25519').publicKey);
  writeFileSync(p('policies/locked.policy.yaml'), ['apiVersion: cerro-torre.dev/v2', 'kind: Policy', 'name: locked', 'mode: strict', 'match:', '  environments: [locked]', 'signers:', `  - keyId: ${other}`, 'attestations:', '  - predicateType: https://slsa.dev/provenance/v1', 'logQuorum: 1', ''].join('\n'));

  const registry = await startRegistry();
  const opts = { allowedAddresses: ['127.0.0.1'], plainHttp: true };
  const push = async (file: string, ref: string) => pushCtp(p(file), ref, opts);
  const v1 = await push('signed-1.0.0.ctp', `${registry.host}/acme/hello:1.0.0`);
  const v2 = await push('signed-2.0.0.ctp', `${registry.host}/acme/hello:2.0.0`);
  const v3 = await push('signed-3.0.0.ctp', `${registry.host}/acme/hello:3.0.0`);
  const tp = await push('tampered.ctp', `${registry.host}/acme/evil:1.0.0`);
  const tagRef = `${registry.host}/acme/hello:stable`;
  const moveTag = async (to: 'v1' | 'v2') => void (await push(to === 'v1' ? 'signed-1.0.0.ctp' : 'signed-2.0.0.ctp', tagRef));
  await moveTag('v1');
  mkdirSync(p('tls'));
  const tls = { ...makeCert(p('tls')), dir: p('tls') };
  return {
    dir, registry, logs,
    trustStorePath: p('trust.json'),
    trust: { store, storeDigest: trustStoreDigest(store) },
    policiesDir: p('policies'),
    refs: { v1: `${registry.host}/acme/hello@${v1.imageDigest}`, v2: `${registry.host}/acme/hello@${v2.imageDigest}`, v3: `${registry.host}/acme/hello@${v3.imageDigest}`, tampered: `${registry.host}/acme/evil@${tp.imageDigest}` },
    digests: { v1: v1.imageDigest, v2: v2.imageDigest, v3: v3.imageDigest, tampered: tp.imageDigest },
    bundles: { v1: v1.bundleDigest, v2: v2.bundleDigest, v1Path: p('signed-1.0.0.ctp') },
    tagRef,
    moveTag,
    tls,
    async cleanup() {
      await registry.stop();
      for (const l of logs) await l.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
