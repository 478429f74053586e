/**
 * Two real signed .ctp bundles of one app (1.0 runs now, 2.0 is promoted): different images,
 * SBOMs (a package added, one removed, one changed) and seccomp profiles (a syscall added and
 * one removed), signed by one key recorded in two logs of two operators; a trust store, a policy
 * set, and a desired-state file with comments and another environment.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openCtp } from '../../src/bundle/read.js';
import { PREDICATE_SLSA_PROVENANCE_V1, PREDICATE_SPDX_DOCUMENT } from '../../src/attest/statement.js';
import { compileTexts } from '../../src/policy/load.js';
import type { PolicySet } from '../../src/policy/policy-set.js';
import type { TrustStore } from '../../src/trust/types.js';
import { makeKey, makeStore, MemLog, trustOf, type TestKey } from '../verify/fixtures.js';
import { signCtpInMemory, tempDir, writeUnsignedCtp } from '../verify/ctp-fixtures.js';

export const REGISTRY = 'registry.example/acme/hello';
export const COMMIT = 'c0ffee'.padEnd(40, '0');

export interface Built { path: string; imageDigest: string; bundleDigest: string; reference: string }

export interface PromoteFixture {
  dir: string;
  signer: TestKey;
  store: TrustStore;
  trust: ReturnType<typeof trustOf>;
  v1: Built;
  v2: Built;
  v3: Built;
  policies: PolicySet;
  policyText: string;
  cleanup(): Promise<void>;
}

const seccomp = (names: string[]) => JSON.stringify({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 1, syscalls: [{ names, action: 'SCMP_ACT_ALLOW' }] });

function predicates(version: string, packages: [string, string][]) {
  return [
    { type: PREDICATE_SLSA_PROVENANCE_V1, predicate: { buildDefinition: { buildType: 'https://cerro-torre.dev/test', externalParameters: {}, resolvedDependencies: [{ uri: 'git+https://github.com/acme/hello@refs/heads/main', digest: { gitCommit: COMMIT } }] }, runDetails: { builder: { id: `https://github.com/acme/hello/.github/workflows/build.yml@refs/heads/main#${version}` } } } },
    { type: PREDICATE_SPDX_DOCUMENT, predicate: { spdxVersion: 'SPDX-2.3', name: `hello-${version}`, packages: packages.map(([name, v]) => ({ SPDXID: `SPDXRef-${name}`, name, versionInfo: v })) } },
  ];
}

export async function buildFixture(): Promise<PromoteFixture> {
  const tmp = await tempDir('ct-promote-');
  const signer = makeKey();
  const logs = [new MemLog('log-a', 'Operator A'), new MemLog('log-b', 'Operator B')];
  const store = makeStore({ signers: [{ key: signer }], logs });
  const build = async (version: string, syscalls: string[], packages: [string, string][]): Promise<Built> => {
    const unsigned = join(tmp.dir, `hello-${version}.unsigned.ctp`);
    await writeUnsignedCtp(unsigned, { version, layer: { 'app/hello.txt': `hello ${version}\n` }, security: { 'security/seccomp.json': seccomp(syscalls) } });
    const path = join(tmp.dir, `hello-${version}.ctp`);
    await signCtpInMemory(unsigned, path, signer, logs, predicates(version, packages));
    const a = await openCtp(path);
    return { path, imageDigest: a.manifest.image_digest, bundleDigest: a.bundleDigest, reference: `${REGISTRY}@${a.manifest.image_digest}` };
  };
  const v1 = await build('1.0', ['read', 'write', 'exit_group'], [['busybox', '1.36.1'], ['zlib', '1.3']]);
  const v2 = await build('2.0', ['read', 'write', 'openat', 'exit_group'].filter((s) => s !== 'write'), [['busybox', '1.37.0'], ['openssl', '3.0.15']]);
  const v3 = await build('3.0', ['read', 'openat', 'exit_group'], [['busybox', '1.37.0'], ['openssl', '3.0.16']]);
  const policyText = `apiVersion: cerro-torre.dev/v2\nkind: Policy\nname: staging\nmatch:\n  environments: [staging, production]\nsigners:\n  - keyId: ${signer.keyId}\nattestations:\n  - predicateType: ${PREDICATE_SLSA_PROVENANCE_V1}\n  - predicateType: ${PREDICATE_SPDX_DOCUMENT}\nlogQuorum: 2\n`;
  const loaded = compileTexts([{ file: 'staging.policy.yaml', text: policyText }]);
  if (loaded.issues.length) throw new Error(JSON.stringify(loaded.issues));
  await writeFile(join(tmp.dir, 'trust-store.json'), JSON.stringify(store));
  return { dir: tmp.dir, signer, store, trust: trustOf(store), v1, v2, v3, policies: loaded.set!, policyText, cleanup: tmp.cleanup };
}

export function desiredState(staging: string, production: string): string {
  return `# Desired state of acme (reviewed by pull request)
environments:
  staging:
    apps:
      hello:
        # the greeter
        bundle: "${staging}"   # pinned by CI
        hosts: { env: staging }
      other:
        bundle: ${REGISTRY.replace('hello', 'other')}@sha256:${'b'.repeat(64)}
  production:
    apps:
      hello:
        bundle: ${production}
        hosts:
          env: production
promotion:
  - { from: staging, to: production, after: 30m }
`;
}
