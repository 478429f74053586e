/**
 * A sealed port that goes (its container stopped) takes its seal jump with it at teardown: by name
 * only (no --logical-in on this kernel), a jump left behind dropped every frame of the next veth of
 * that name on any bridge (Podman's, another agent's) until a recover() of this manager ran, which
 * `ct host stop` without an agent never does (review finding).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import Database from 'better-sqlite3';
import { NetworkManager, findNetavark } from '../../host/network/index.js';
import { stateScope } from '../../host/runtime/scope.js';
import { claimSubnetBase } from '../support/subnets.js';
import { removeGuardChains } from './artifacts.js';

const pid = process.pid;
const BASE = claimSubnetBase();
const PREFIX = `ctr${pid % 100000}r`;
const ID = (name: string) => `ctr-${pid}-${name}`;
const NESTED = ID('nested');
const FOREIGN = ID('foreign');
const FBR = `rvb${pid % 100000}`;
const run = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const connectFrom = (ns: string, host: string, port: number) => new Promise<string>((resolve) => {
  const script = `const c=require('net').connect(${port},${JSON.stringify(host)},()=>{console.log('connected');process.exit(0)});c.on('error',(e)=>{console.log('error '+e.code);process.exit(0)});setTimeout(()=>{console.log('silent');process.exit(0)},3000)`;
  execFile('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { encoding: 'utf8', timeout: 10_000 }, (err, out) => resolve(err ? `failed ${err.message}` : out.trim()));
});

describe('the seal of a port that goes', () => {
  let stateDir: string;
  let net: NetworkManager;
  let server: Server | undefined;
  const ns = (app: string) => basename(net.attachment(ID(app))!.netns);
  const sealLines = () => run('ebtables-save').split('\n').filter((l) => l.includes(`ct-as-${stateScope(stateDir)}-drop`));

  beforeAll(async () => {
    await findNetavark();
    stateDir = mkdtempSync(join(tmpdir(), 'ct-seal-gone-'));
    net = new NetworkManager({ stateDir, subnetBase: BASE, bridgePrefix: PREFIX, slots: 2 });
    for (const app of ['shut', 'wide']) await net.attach({ containerId: ID(app), environment: 'e', app, egress: 'any', ports: [] });
  }, 60_000);

  afterAll(async () => {
    server?.close();
    for (const x of [['netns', 'delete', NESTED], ['netns', 'delete', FOREIGN], ['link', 'delete', FBR]]) { try { run('ip', ...x); } catch { /* gone */ } }
    for (const row of net?.store.attachments() ?? []) await net.detach(row.containerId);
    net?.close();
    removeGuardChains(stateScope(stateDir));
    rmSync(stateDir, { recursive: true, force: true });
  }, 60_000);

  it('a sealed container that stops takes its seal jump with it: a foreign veth of that name, on another bridge, is not cut off', async () => {
    // An upgraded row whose container hid its veth: sealed by recover().
    removeGuardChains(stateScope(stateDir));
    const db = new Database(join(stateDir, 'state.db'));
    db.prepare('UPDATE net_attachments SET guard_port = NULL, guard_ifindex = NULL, guard_mac = NULL').run();
    db.close();
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
    expect(run('ip', '-o', 'link').includes(` ${port}@`)).toBe(false);
    // Podman (or another agent) makes a veth of that name on a bridge of its own.
    run('ip', 'link', 'add', FBR, 'type', 'bridge');
    run('ip', 'addr', 'add', `${BASE}.201.1/24`, 'dev', FBR);
    run('ip', 'link', 'set', FBR, 'up');
    run('ip', 'netns', 'add', FOREIGN);
    run('ip', 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', FOREIGN);
    run('ip', 'link', 'set', port, 'master', FBR, 'up');
    run('ip', '-n', FOREIGN, 'addr', 'add', `${BASE}.201.2/24`, 'dev', 'eth0');
    run('ip', '-n', FOREIGN, 'link', 'set', 'eth0', 'up');
    server = createServer((s) => s.end()).listen(0, `${BASE}.201.1`);
    await new Promise((r) => server!.once('listening', r));
    const tcp = (server.address() as { port: number }).port;
    await new Promise((r) => setTimeout(r, 1500));
    const reached = await connectFrom(FOREIGN, `${BASE}.201.1`, tcp);
    expect(reached).toBe('connected');
  }, 60_000);
});
