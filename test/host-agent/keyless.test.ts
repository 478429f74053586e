/**
 * A host runs a bundle signed only keylessly when its own policies name the signing workflow: it
 * verifies again with its trust store, its trusted root and the keyless signers of its policies,
 * and refuses before runc sees anything once they no longer name that identity.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { collectFacts } from '../../host/facts.js';
import { RuncRuntime } from '../../host/runtime/runc.js';
import { LocalRunner } from '../../host/agent/runner.js';
import { PolicyStore } from '../../src/policy/store.js';
import { startSigstoreMock, type SigstoreMock } from '../support/sigstore-mock.js';
import { GH_ISSUER, GH_SAN, rootOf, signCtpKeyless } from '../sigstore/fixtures.js';
import { agentFixture, assignmentFor, deleteAllAndClose, describeBundle, runcDeleteAll, runcState, type AgentFixture, type BundleFile } from './fixture.js';

const OTHER_SAN = 'https://github.com/acme/other/.github/workflows/release.yml@refs/heads/main';

let fx: AgentFixture;
let m: SigstoreMock;
let runtime: RuncRuntime;
let stateDir: string;
let keyless: BundleFile;

const policy = (san: string) =>
  ['apiVersion: cerro-torre.dev/v2', 'kind: Policy', 'name: production', 'mode: strict', 'match:', '  environments: [production]', 'signers:', `  - issuer: ${GH_ISSUER}`, `    subject: ${san}`,
    'attestations:', '  - predicateType: https://slsa.dev/provenance/v1', '  - predicateType: https://spdx.dev/Document', 'logQuorum: 1', 'runtime:', '  seccomp:', '    profile: runtime-default', ''].join('\n');

beforeAll(async () => {
  fx = await agentFixture();
  m = await startSigstoreMock();
  await signCtpKeyless(m, fx.bundles.unsigned.path, join(fx.dir, 'keyless.ctp'));
  keyless = await describeBundle(join(fx.dir, 'keyless.ctp'));
  mkdirSync(join(fx.dir, 'keyless-policies'));
  writeFileSync(join(fx.dir, 'keyless-policies/production.policy.yaml'), policy(GH_SAN));
  stateDir = join(fx.dir, 'keyless-host');
  runtime = await RuncRuntime.open({ stateDir, unifiedCgroupMount: (await collectFacts()).cgroup.unifiedMount });
}, 60_000);
afterAll(async () => {
  if (runtime) await deleteAllAndClose(runtime);
  if (stateDir) runcDeleteAll(stateDir);
  await m?.close();
  await fx?.cleanup();
});

describe('a host and keyless bundles', () => {
  it('runs it when its policies name the identity; refuses it before runc once they name another', async () => {
    const root = rootOf(m);
    const policies = new PolicyStore([join(fx.dir, 'keyless-policies')]);
    expect((await policies.reload()).ok).toBe(true);
    const facts = await collectFacts();
    const runner = new LocalRunner({ stateDir, trust: () => ({ ...fx.trust, trustedRoot: root, trustedRootDigest: root.digest }), policies, facts: async () => facts, runtime });
    const a = assignmentFor(keyless, { app: 'keyless', generation: 1 });
    expect(await runner.run(a, keyless.path)).toMatchObject({ state: 'running' });
    expect(runcState(stateDir, runner.containerId(a))?.status).toBe('running');

    writeFileSync(join(fx.dir, 'keyless-policies/production.policy.yaml'), policy(OTHER_SAN));
    expect((await policies.reload()).ok).toBe(true);
    const other = assignmentFor(keyless, { app: 'keyless-2', generation: 1 });
    const out = await runner.run(other, keyless.path);
    expect(out).toMatchObject({ state: 'refused', code: 'IDENTITY_MISMATCH' });
    expect(JSON.stringify(out)).toContain(GH_SAN);
    expect(runcState(stateDir, runner.containerId(other))).toBeUndefined();
  }, 60_000);
});
