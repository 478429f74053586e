/**
 * The anti-spoofing guards after an upgrade from an agent that recorded none (guard_* NULL) and
 * with a recorded port that is stale (host/network/anti-spoofing.ts, manager.ts repairGuards()):
 * every port of our bridge has a guard of ours or a jump to the scope's DROP chain, so a container
 * with CAP_NET_ADMIN that hides its veth from the host-side lookup, or one whose record no longer
 * names its veth, sends nothing with a neighbour's address. Both cases were found by a review.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import Database from 'better-sqlite3';
import { NetworkManager, findNetavark, type Egress } from '../../host/network/index.js';
import { stateScope } from '../../host/runtime/scope.js';
import { claimSubnetBase } from '../support/subnets.js';
import { asBeforeGuards, listArtifacts, removeGuardChains } from './artifacts.js';
import { makeOutside, removeOutside, sendFrames, sniffed } from './probes.js';

const pid = process.pid;
const BASE = claimSubnetBase();
const PREFIX = `ctu${pid % 100000}u`;
const ID = (name: string) => `ctu-${pid}-${name}`;
const scope = { netnsPrefix: `ctu-${pid}-`, bridgePrefix: PREFIX, subnetBase: BASE };
const OUT_NS = ID('outside');
const NESTED = ID('nested');
const OUTSIDE = { ns: OUT_NS, hostIf: `ctuo${pid % 100000}`, host: `${BASE}.200.1`, addr: `${BASE}.200.2` };
const ENV = 'guards';
const APPS: readonly [string, Egress][] = [['shut', 'none'], ['wide', 'any']];
const run = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

describe('every port of the bridge is guarded after an upgrade or with a stale record', () => {
  let stateDir: string;
  let net: NetworkManager;
  let bridge: string;
  const ns = (app: string) => basename(net.attachment(ID(app))!.netns);
  const addr = (app: string) => net.attachment(ID(app))!.address;
  const macIn = (nsName: string) => run('ip', 'netns', 'exec', nsName, 'cat', '/sys/class/net/eth0/address').trim();
  const dashed = (m: string) => m.replace(/:/g, '-');
  const gatewayMac = () => dashed(run('cat', `/sys/class/net/${bridge}/address`).trim());
  const sendIn = (nsName: string, ...frames: string[]) => sendFrames(nsName, 'eth0', ...frames);
  const guardLines = () => run('ebtables-save').split('\n').filter((l) => l.includes(`ct-as-${stateScope(stateDir)}-`));
  /** From `from` (a namespace): a datagram with wide's address, then wide's own (the control). What the outside host saw. */
  const spoofFrom = (from: string) => sniffed(OUT_NS, 'WIDEOUT', () => {
    sendIn(from, `${gatewayMac()}:${dashed(macIn(from))}:${addr('wide')}:${OUTSIDE.addr}:SHUTASWIDE`);
    sendIn(ns('wide'), `${gatewayMac()}:${dashed(macIn(ns('wide')))}:${addr('wide')}:${OUTSIDE.addr}:WIDEOUT`);
  });
  /** recover() of a fresh manager on the state directory: an agent restarted or upgraded. */
  const restart = async (alerts: [string, string][] = []): Promise<string> => {
    const next = new NetworkManager({ stateDir, subnetBase: BASE, bridgePrefix: PREFIX, slots: 2 });
    next.onAlert((id, code) => alerts.push([id, code]));
    try {
      return await next.recover(() => 'running').then(() => 'ok', (e: { code?: string }) => e.code ?? 'error');
    } finally {
      next.close();
    }
  };
  /** What an agent of main left: no guard chains, guard_* NULL. */
  const asMain = () => asBeforeGuards(stateDir);

  beforeAll(async () => {
    await findNetavark();
    stateDir = mkdtempSync(join(tmpdir(), 'ct-guardup-state-'));
    net = new NetworkManager({ stateDir, subnetBase: BASE, bridgePrefix: PREFIX, slots: 2 });
    for (const [app, egress] of APPS) await net.attach({ containerId: ID(app), environment: ENV, app, egress, ports: [] });
    bridge = net.bridgeOf(net.store.network(ENV)!).bridge;
    makeOutside(OUTSIDE);
  }, 60_000);

  afterAll(async () => {
    try { run('ip', 'netns', 'delete', NESTED); } catch { /* not made, or gone */ }
    for (const row of net?.store.attachments() ?? []) await net.detach(row.containerId);
    net?.close();
    removeOutside(OUTSIDE);
    const left = stateDir ? removeGuardChains(stateScope(stateDir)) : [];
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
    expect(left).toEqual([]);
    expect(listArtifacts(scope)).toEqual({ netns: [], bridges: [], veths: [], rules: [] });
  }, 60_000);

  it('an upgraded row (no port recorded) gets its port from the host side and a guard of its address only', async () => {
    asMain();
    expect(await restart()).toBe('ok');
    const shut = guardLines().filter((l) => l.includes(`--ip-src ${addr('shut')} `));
    // Address only: the MAC eth0 shows now is the container's to choose.
    expect(shut).toEqual([expect.not.stringContaining(' -s ')]);
    expect(net.store.attachment(ID('shut'))!.guard).toEqual({ port: expect.any(String), ifindex: expect.any(Number) });
    expect(await spoofFrom(ns('shut'))).toEqual(['WIDEOUT']);
  }, 60_000);

  it('a container that moved its eth0 into a namespace of its own before the upgrade sends nothing: its port is sealed', async () => {
    asMain();
    run('ip', 'netns', 'add', NESTED);
    run('ip', '-n', ns('shut'), 'link', 'set', 'eth0', 'netns', NESTED);
    run('ip', '-n', NESTED, 'link', 'set', 'eth0', 'up');
    try {
      const alerts: [string, string][] = [];
      expect(await restart(alerts)).toBe('ok');
      expect(alerts).toEqual([[ID('shut'), 'NETWORK_SETUP_FAILED']]);
      expect(await spoofFrom(NESTED)).toEqual(['WIDEOUT']);
    } finally {
      run('ip', '-n', NESTED, 'link', 'set', 'eth0', 'netns', ns('shut'));
      run('ip', '-n', ns('shut'), 'link', 'set', 'eth0', 'up');
      run('ip', 'netns', 'delete', NESTED);
    }
    // Back in its namespace, the next recover() finds it and guards it (the seal goes with it).
    expect(await restart()).toBe('ok');
    expect(guardLines().filter((l) => l.endsWith('-drop'))).toEqual([]);
    expect(await spoofFrom(ns('shut'))).toEqual(['WIDEOUT']);
  }, 60_000);

  it('a recorded port whose ifindex is not the live veth\'s (a stale record) keeps the live veth guarded', async () => {
    expect(await restart()).toBe('ok');
    const db = new Database(join(stateDir, 'state.db'));
    db.prepare('UPDATE net_attachments SET guard_ifindex = guard_ifindex + 1000 WHERE container_id = ?').run(ID('shut'));
    db.close();
    expect(await restart()).toBe('ok');
    expect(await spoofFrom(ns('shut'))).toEqual(['WIDEOUT']);
  }, 60_000);

  it('a legitimate stop, start and new container on the bridge are not sealed', async () => {
    await net.suspend(ID('shut'));
    expect(await restart()).toBe('ok');
    await net.resume(ID('shut'));
    await net.attach({ containerId: ID('late'), environment: ENV, app: 'late', egress: 'any', ports: [] });
    expect(await restart()).toBe('ok');
    expect(guardLines().filter((l) => l.endsWith('-drop'))).toEqual([]);
    // The restarted and the new container reach the outside with their own addresses.
    const seen = await sniffed(OUT_NS, 'LATEOUT', () => {
      sendIn(ns('late'), `${gatewayMac()}:${dashed(macIn(ns('late')))}:${addr('late')}:${OUTSIDE.addr}:LATEOUT`);
    });
    expect(seen).toEqual(['LATEOUT']);
    await net.detach(ID('late'));
  }, 60_000);
});
