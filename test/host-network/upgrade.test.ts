/**
 * Containers an earlier agent made keep their names outside the state directory as it gave them:
 * the network namespace `/run/netns/<id>` and the cgroup `/cerro-torre/<id>`, without the state
 * directory's scope that new containers carry (host/runtime/scope.ts). After the upgrade, a failed
 * replace of such a container rolls back to a running container (its saved config named a
 * namespace the rollback's new attachment no longer makes), and an agent killed while it resumed
 * such a container's network leaves nothing once the next agent recovers, stops or removes it.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildRuntimePlan } from '../../host/enforce/index.js';
import { collectFacts, type HostFacts } from '../../host/facts.js';
import { attachNetwork } from '../../host/agent/network-hook.js';
import { restorePrevious, savePrevious } from '../../host/lifecycle/replace.js';
import { NetworkManager, findNetavark } from '../../host/network/index.js';
import type { AttachmentRow } from '../../host/network/store.js';
import { RuncRuntime } from '../../host/runtime/index.js';
import { DIGEST, makeRootfs, requireHostTools } from '../host/support.js';
import { listArtifacts } from './artifacts.js';
import { claimSubnetBase } from '../support/subnets.js';

const pid = process.pid;
const RANGE = { subnetBase: claimSubnetBase(), bridgePrefix: `ctu${pid % 100000}b` };
const ID = (name: string) => `ctup-${pid}-${name}`;
const scope = { netnsPrefix: `ctup-${pid}-`, ...RANGE };

/** How agents before the scope named a container's namespace. */
class EarlierAgentNetwork extends NetworkManager {
  override netnsPath(containerId: string): string {
    return `/run/netns/${containerId}`;
  }
}

describe('containers of an earlier agent, after the upgrade', () => {
  let base: string;
  let rootfs: string;
  let facts: HostFacts;
  let stateDir: string;
  let rt: RuncRuntime;
  let net: NetworkManager;

  beforeAll(async () => {
    requireHostTools();
    await findNetavark();
    facts = await collectFacts();
    ({ base, rootfs } = await makeRootfs());
    stateDir = mkdtempSync(join(tmpdir(), 'ct-upgrade-state-'));
    net = new NetworkManager({ stateDir, ...RANGE, slots: 2 });
    rt = await RuncRuntime.open({ stateDir, unifiedCgroupMount: facts.cgroup.unifiedMount, beforeStart: (id) => net.resume(id) });
  });

  afterAll(async () => {
    for (const c of rt?.store.list() ?? []) await rt.delete(c.id, { force: true }).catch(() => undefined);
    for (const a of net?.store.attachments() ?? []) await net.detach(a.containerId).catch(() => undefined);
    rt?.close();
    net?.close();
    for (const d of [base, stateDir]) if (d) rmSync(d, { recursive: true, force: true });
  });

  /** A running container as an earlier agent made it: bare namespace and cgroup names. */
  async function earlierContainer(id: string): Promise<void> {
    const earlier = new EarlierAgentNetwork({ stateDir, ...RANGE, slots: 2 });
    try {
      const config = (await buildRuntimePlan({
        id, rootfs, app: { name: id, imageDigest: DIGEST }, runtime: { command: ['/bin/sh', '-c', 'while true; do sleep 1; done'], network: 'bridge' },
        grants: { seccomp: 'required' }, cgroupsPath: `/cerro-torre/${id}`,
      }, facts)).config;
      await attachNetwork(earlier, config, { containerId: id, environment: 'up', app: id, ports: [], egress: 'none' });
      expect(net.attachment(id)?.netns).toBe(`/run/netns/${id}`);
      expect((await rt.run(id, config, { appName: id })).status).toBe('running');
    } finally {
      earlier.close();
    }
  }

  it('rolls a failed replace of one back to a running container, in this state directory\'s names', async () => {
    const id = ID('web');
    await earlierContainer(id);
    const assigned = join(base, 'assigned.json');
    writeFileSync(assigned, '{}\n');
    // What an in-place replace does before its new container fails: keep the old one, remove it and its network.
    const prev = (await savePrevious(rt.store.get(id)!, assigned, net))!;
    await rt.delete(id, { force: true });
    await net.detach(id);
    expect(existsSync(`/run/netns/${id}`)).toBe(false);
    const back = await restorePrevious(rt, id, prev, assigned, prev.rootfs, net);
    expect(back.status).toBe('running');
    expect(back.cgroupsPath).toBe(rt.cgroupsPathFor(id));
    expect(net.attachment(id)).toMatchObject({ phase: 'up', netns: net.netnsPath(id) });
    expect(existsSync(net.netnsPath(id))).toBe(true);
    await rt.delete(id, { force: true });
    await net.detach(id);
    expect(listArtifacts(scope)).toEqual({ netns: [], bridges: [], veths: [], rules: [] });
  });

  /** What an agent killed inside resume() leaves: the namespace and veth made, the row still 'down'. */
  async function killedInResume(id: string): Promise<AttachmentRow> {
    const row = net.attachment(id)!;
    const setup = (net as unknown as { netavarkSetup(paths: unknown, row: AttachmentRow): Promise<void> }).netavarkSetup.bind(net);
    await setup(await findNetavark(), row);
    expect([net.attachment(id)?.phase, existsSync(row.netns)]).toEqual(['down', true]);
    return row;
  }

  it('tears down what a resume killed half-way made, whether the container is then recovered, stopped again or removed', async () => {
    const id = ID('api');
    await earlierContainer(id);
    await rt.stop(id, 2000);
    await net.suspend(id);
    expect(existsSync(`/run/netns/${id}`)).toBe(false);

    // The next agent's recovery, told the container is stopped.
    await killedInResume(id);
    expect(await net.recover((c) => (c === id ? 'stopped' : 'gone'))).toEqual([id]);
    expect(existsSync(`/run/netns/${id}`)).toBe(false);
    expect(listArtifacts(scope).veths).toEqual([]);
    expect(net.attachment(id)?.phase).toBe('down');

    // `ct host stop` of it (suspend).
    await killedInResume(id);
    await net.suspend(id);
    expect([existsSync(`/run/netns/${id}`), listArtifacts(scope).veths]).toEqual([false, []]);

    // `ct host rm` of it (detach): the address is freed only with the veth that answered for it.
    await killedInResume(id);
    await rt.delete(id, { force: true });
    await net.detach(id);
    expect(net.attachment(id)).toBeUndefined();
    expect(listArtifacts(scope)).toEqual({ netns: [], bridges: [], veths: [], rules: [] });
  });
});
