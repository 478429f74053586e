/**
 * A sealed port that goes (its container stopped) takes its seal jump with it at teardown: by name
 * only (no --logical-in on this kernel), a jump left behind dropped every frame of the next veth of
 * that name on any bridge (Podman's, another agent's) until a recover() of this manager ran, which
 * `ct host stop` without an agent never does (review finding).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { NetworkManager, findNetavark } from '../../host/network/index.js';
import { stateScope } from '../../host/runtime/scope.js';
import { claimSubnetBase } from '../support/subnets.js';
import { asBeforeGuards, removeGuardChains } from './artifacts.js';

const pid = process.pid;
const BASE = claimSubnetBase();
const PREFIX = `ctr${pid % 100000}r`;
const ID = (name: string) => `ctr-${pid}-${name}`;
const NESTED = ID('nested');
const run = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

describe('the seal of a port that goes', () => {
  let stateDir: string;
  let net: NetworkManager;
  const ns = (app: string) => basename(net.attachment(ID(app))!.netns);
  const sealLines = () => run('ebtables-save').split('\n').filter((l) => l.includes(`ct-as-${stateScope(stateDir)}-drop`));

  beforeAll(async () => {
    await findNetavark();
    stateDir = mkdtempSync(join(tmpdir(), 'ct-seal-gone-'));
    net = new NetworkManager({ stateDir, subnetBase: BASE, bridgePrefix: PREFIX, slots: 2 });
    for (const app of ['shut', 'wide']) await net.attach({ containerId: ID(app), environment: 'e', app, egress: 'any', ports: [] });
  }, 60_000);

  afterAll(async () => {
    try { run('ip', 'netns', 'delete', NESTED); } catch { /* gone */ }
    for (const row of net?.store.attachments() ?? []) await net.detach(row.containerId);
    net?.close();
    removeGuardChains(stateScope(stateDir));
    rmSync(stateDir, { recursive: true, force: true });
  }, 60_000);

  it('a sealed container that stops takes its seal jump with it: nothing is left to cut off the next veth of that name', async () => {
    // An upgraded row whose container hid its veth: sealed by recover().
    asBeforeGuards(stateDir);
    run('ip', 'netns', 'add', NESTED);
    run('ip', '-n', ns('shut'), 'link', 'set', 'eth0', 'netns', NESTED);
    const agent = new NetworkManager({ stateDir, subnetBase: BASE, bridgePrefix: PREFIX, slots: 2 });
    await agent.recover(() => 'running');
    agent.close();
    const sealed = sealLines();
    const port = sealed.find((l) => l.startsWith('-A INPUT'))!.split(' ')[3];
    expect(port).toMatch(/^veth/);
    // The container stops: its processes (and its own namespace) go, the veth with them; then
    // `ct host stop` acting without an agent suspends its network.
    run('ip', 'netns', 'delete', NESTED);
    await net.suspend(ID('shut'));
    // Nothing of the seal names the port that went.
    expect(sealLines().filter((l) => l.split(' ')[3] === port)).toEqual([]);
    // (Re-making a veth of that name on a bridge of our own here to show it reached would race the
    // other network suites of a parallel run for veth names: what would cut it off is the jump above.)
  }, 60_000);
});
