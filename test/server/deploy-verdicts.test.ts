/**
 * One deploy run judges each distinct set of policy-relevant host facts once (#14 target 8: a
 * fleet of one kind shares one evaluation): hosts whose facts differ are judged apart, and a
 * policy reload in the middle of a run is judged afresh, never answered from the old set.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { realSteps } from '../../server/deploy/steps.js';
import type { DeployRun, VerifiedBundle } from '../../server/deploy/pipeline.js';
import type { ServerContext } from '../../server/context.js';
import type { HostHub } from '../../server/channel/hub.js';
import { PolicyStore } from '../../src/policy/store.js';
import { VerificationCache } from '../../src/verify/cache.js';
import type { HostFacts } from '../../src/protocol/messages.js';
import { input, KEY_A, v2 } from '../policy/helpers.js';
import { FACTS } from './channel/support.js';

const dir = mkdtempSync(join(tmpdir(), 'ct-verdicts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const policy = (body: string) => v2('fleet', `match:\n  all: true\nsigners:\n  - keyId: ${KEY_A}\n${body}`);

describe('policy verdicts within one deploy run', () => {
  it('shares the verdict of hosts with the same facts, judges other facts apart, and judges a reloaded set afresh', async () => {
    const policies = join(dir, 'policies');
    const file = join(policies, 'fleet.policy.yaml');
    mkdirSync(policies, { recursive: true });
    writeFileSync(file, policy('runtime:\n  seccomp: { profile: runtime-default }\n'));
    const store = new PolicyStore([policies]);
    expect((await store.reload()).ok).toBe(true);
    const steps = realSteps({ config: { dataDir: join(dir, 'data') } } as unknown as ServerContext, {} as HostHub, { trust: () => undefined, policies: store, cache: new VerificationCache({ maxEntries: 4 }) });
    const { evidence, manifest } = input();
    const bundle: Extract<VerifiedBundle, { ok: true }> = { ok: true, path: '/nonexistent', bundleDigest: `sha256:${'b'.repeat(64)}`, imageDigest: evidence.imageDigest, evidence, manifest: { evidence, manifest, integrity: [] } };
    const noSeccomp = { ...FACTS, seccomp: { available: false, actions: [] } } as HostFacts;
    const run: DeployRun = {};
    const host = (id: string, facts: HostFacts) => ({ id, facts, labels: {} });

    const a = await steps.decide(bundle, host('a', FACTS), 'production', undefined, run);
    expect(a).toEqual({ allow: true, warnings: [] });
    // Facts that differ where the policy looks: judged on their own, and denied.
    const b = await steps.decide(bundle, host('b', noSeccomp), 'production', undefined, run);
    expect(b).toMatchObject({ allow: false, code: 'HOST_SECCOMP_UNAVAILABLE' });
    // Another host with a's facts: a's verdict, not a new evaluation.
    expect(await steps.decide(bundle, host('c', { ...FACTS }), 'production', undefined, run)).toBe(a);
    // Another environment is other facts.
    expect(await steps.decide(bundle, host('d', FACTS), 'staging', undefined, run)).not.toBe(a);
    expect(run.verdicts?.size).toBe(3);

    // The policies change in the middle of the run: the next host is judged by the new set.
    writeFileSync(file, policy('runtime:\n  seccomp: { profile: runtime-default }\nrequireVerifiedIn: [staging]\n'));
    expect((await store.reload()).ok).toBe(true);
    expect(await steps.decide(bundle, host('e', FACTS), 'production', undefined, run)).toMatchObject({ allow: false, code: 'NOT_VERIFIED_IN' });
    // Without a run (the verify API), nothing is remembered.
    expect(await steps.decide(bundle, host('f', noSeccomp), 'production')).toMatchObject({ allow: false });
  });
});
