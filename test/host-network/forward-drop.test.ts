/**
 * A port published on 0.0.0.0 on a host whose iptables FORWARD policy is DROP (any host with
 * Docker installed): a connection from another machine is DNATed to the container and then
 * FORWARDed to its bridge, where the DROP policy would refuse it. The "host" here is a network
 * namespace of the test's own (with its own firewall: the real host's FORWARD policy is never
 * touched), the "other machine" a second namespace behind a veth. The agent code (NetworkManager +
 * RuncRuntime, as the agent runs them) runs inside the host namespace (`nsenter --net`, which keeps
 * the cgroup mounts that `ip netns exec` would hide from runc).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findNetavark } from '../../host/network/index.js';
import { repoRoot } from '../support/cli.js';
import { makeRootfs, requireHostTools } from '../host/support.js';

const pid = process.pid;
const HOST_NS = `ctfd-${pid}-host`;
const CLIENT_NS = `ctfd-${pid}-client`;
const APP_ID = `ctfd-${pid}-web`;
const VETH = `ctfd${pid % 100000}`;
// Inside the host namespace: nothing else uses these names or subnets there.
const NET = { subnetBase: '10.77', bridgePrefix: 'ctfdbr' };
const PORT = 18080;

const ip = (...a: string[]) => execFileSync('ip', a, { encoding: 'utf8' });
const inHost = (bin: string, ...a: string[]) => execFileSync('nsenter', [`--net=/run/netns/${HOST_NS}`, bin, ...a], { encoding: 'utf8' });

/** One GET from the other machine to the host's outside address; the body, or curl's exit code. */
function fromOutside(): string {
  const r = spawnSync('nsenter', [`--net=/run/netns/${CLIENT_NS}`, 'curl', '-s', '-m', '3', `http://192.168.231.1:${PORT}/`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : `curl exit ${r.status}`;
}

describe('a port published on 0.0.0.0 under a FORWARD DROP policy', () => {
  let dir: string;
  let base: string;
  let agent: string;
  const realPolicy = () => /^:FORWARD (\w+)/m.exec(execFileSync('iptables-save', ['-t', 'filter'], { encoding: 'utf8' }))?.[1];
  let policyBefore: string | undefined;

  beforeAll(async () => {
    requireHostTools();
    await findNetavark();
    policyBefore = realPolicy();
    dir = mkdtempSync(join(tmpdir(), 'ct-fwd-drop-'));
    let rootfs: string;
    ({ base, rootfs } = await makeRootfs());
    execFileSync('mkdir', ['-p', join(rootfs, 'www')]);
    writeFileSync(join(rootfs, 'www', 'index.html'), 'from the container\n');
    ip('netns', 'add', HOST_NS);
    ip('netns', 'add', CLIENT_NS);
    ip('link', 'add', VETH, 'type', 'veth', 'peer', 'name', `${VETH}c`);
    ip('link', 'set', VETH, 'netns', HOST_NS);
    ip('link', 'set', `${VETH}c`, 'netns', CLIENT_NS);
    ip('-n', HOST_NS, 'addr', 'add', '192.168.231.1/24', 'dev', VETH);
    ip('-n', CLIENT_NS, 'addr', 'add', '192.168.231.2/24', 'dev', `${VETH}c`);
    for (const [ns, dev] of [[HOST_NS, VETH], [CLIENT_NS, `${VETH}c`]]) {
      ip('-n', ns, 'link', 'set', dev, 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    // The host's firewall as Docker leaves it: forwarding refused unless a rule accepts it.
    inHost('iptables', '-P', 'FORWARD', 'DROP');
    const build = (p: string) => join(repoRoot, 'build', p);
    agent = join(dir, 'agent.mjs');
    writeFileSync(agent, `
import { RuncRuntime } from '${build('host/runtime/index.js')}';
import { NetworkManager } from '${build('host/network/index.js')}';
import { attachNetwork } from '${build('host/agent/network-hook.js')}';
import { buildRuntimePlan } from '${build('host/enforce/index.js')}';
import { collectFacts } from '${build('host/facts.js')}';
const stateDir = ${JSON.stringify(join(dir, 'state'))};
const facts = await collectFacts();
const net = new NetworkManager({ stateDir, ...${JSON.stringify(NET)} });
const rt = await RuncRuntime.open({ stateDir, unifiedCgroupMount: facts.cgroup.unifiedMount, beforeStart: (id) => net.resume(id) });
if (process.argv[2] === 'up') {
  const plan = await buildRuntimePlan({ id: '${APP_ID}', rootfs: ${JSON.stringify(rootfs)}, app: { name: 'web', imageDigest: 'sha256:${'ab'.repeat(32)}' },
    runtime: { command: ['/bin/busybox', 'httpd', '-f', '-p', '8080', '-h', '/www'], user: '65534:65534', network: 'bridge' }, grants: { seccomp: 'required' }, cgroupsPath: '/cerro-torre/${APP_ID}' }, facts);
  await attachNetwork(net, plan.config, { containerId: '${APP_ID}', environment: 'web', app: 'web', egress: 'none', ports: [{ host: ${PORT}, container: 8080, address: '0.0.0.0', protocol: 'tcp' }] });
  process.stdout.write((await rt.run('${APP_ID}', plan.config, { appName: 'web' })).status);
} else {
  for (const c of await rt.list()) await rt.delete(c.id, { force: true, purge: true });
  await net.recover(() => 'gone');
  process.stdout.write('down');
}
rt.close();
net.close();
`);
    execFileSync(process.execPath, [join(repoRoot, 'scripts/build.mjs')], { cwd: repoRoot });
  });

  afterAll(() => {
    if (agent && existsSync(join(dir, 'state'))) spawnSync('nsenter', [`--net=/run/netns/${HOST_NS}`, process.execPath, agent, 'down']);
    for (const ns of [HOST_NS, CLIENT_NS]) spawnSync('ip', ['netns', 'delete', ns]);
    rmSync(dir, { recursive: true, force: true });
    rmSync(base, { recursive: true, force: true });
  });

  it('answers a client on another machine, and leaves no rule behind when the container goes', () => {
    expect(inHost('iptables-save', '-t', 'filter')).toMatch(/^:FORWARD DROP/m);
    expect(inHost(process.execPath, agent, 'up')).toBe('running');
    let answer = fromOutside();
    for (let i = 0; i < 50 && answer !== 'from the container'; i++) {
      execFileSync('sleep', ['0.1']);
      answer = fromOutside();
    }
    expect(answer).toBe('from the container');
    // What lets it through: our ACCEPT for connections DNATed to the container's address and port.
    const filter = inHost('iptables-save', '-t', 'filter');
    expect(filter).toMatch(new RegExp(`^-A ${NET.bridgePrefix}-FORWARD -d 10\\.77\\.\\d+\\.\\d+/32 -o ${NET.bridgePrefix}\\d+ -p tcp -m tcp --dport 8080 -m conntrack --ctstate DNAT .*-j ACCEPT$`, 'm'));
    expect(filter).toMatch(/^:FORWARD DROP/m);

    expect(inHost(process.execPath, agent, 'down')).toBe('down');
    expect(fromOutside()).toMatch(/^curl exit/);
    const left = inHost('iptables-save').split('\n').filter((l) => l.startsWith('-A') && (l.includes(NET.bridgePrefix) || l.includes('10.77.')));
    expect(left).toEqual([]);
    // The real host's FORWARD policy was never changed.
    expect(realPolicy()).toBe(policyBefore);
  }, 60_000);
});
