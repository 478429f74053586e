/**
 * Egress policy (`runtime.network.egress`) tested by real connections, with netavark 1.4 bridges
 * made by host/network. Three environments, one per egress value, each with a client and a peer
 * app (processes in the containers' network namespaces, as runc would run them); a listener on the
 * host (on each bridge's gateway address) and one on an "outside" network (a namespace of its own
 * behind a veth, routed through the host like the Internet would be):
 *
 * | egress        | peer of its environment | host listener | outside listener |
 * |---------------|-------------------------|---------------|------------------|
 * | `none`        | yes (by name)           | no            | no               |
 * | `environment` | yes (by name)           | yes           | no               |
 * | `any`         | yes (by name)           | yes           | yes              |
 *
 * Each refusal is shown beside a connection that works, so that it is the policy that refuses.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { NetworkManager, findNetavark, type Egress } from '../../host/network/index.js';
import { listArtifacts } from './artifacts.js';
import { fetchIn, makeOutside, removeOutside, untilAnswering } from './probes.js';

const pid = process.pid;
const BASE = `172.${16 + (pid % 16)}`;
const BRIDGE = `cte${pid % 100000}g`;
const ID = (name: string) => `cteg-${pid}-${name}`;
const OUT_NS = ID('outside');
const OUT_HOST_IF = `cteo${pid % 100000}`;
const OUT = { host: `${BASE}.200.1`, ns: `${BASE}.200.2` };
const OUTSIDE = { ns: OUT_NS, hostIf: OUT_HOST_IF, host: OUT.host, addr: OUT.ns };
const scope = { netnsPrefix: `cteg-${pid}-`, bridgePrefix: BRIDGE, subnetBase: BASE };

/** The namespace of a container (its name carries the state directory's scope), or a namespace of the test's own. */
let nsOf = (id: string): string => id;

const fetchFrom = (ns: string, url: string): Promise<string> => fetchIn(nsOf(ns), url);

describe('egress policy by connection (netavark bridges)', () => {
  let stateDir: string;
  let net: NetworkManager;
  const www = mkdtempSync(join(tmpdir(), 'ct-egress-www-'));
  const procs: ChildProcess[] = [];
  const servers: Server[] = [];
  const gateway: Partial<Record<Egress, string>> = {};

  const httpd = (ns: string, dir: string) => {
    procs.push(spawn('ip', ['netns', 'exec', nsOf(ns), 'busybox', 'httpd', '-f', '-p', '8080', '-h', dir], { stdio: 'ignore' }));
  };

  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error('host/network tests run as root (CI does)');
    await findNetavark();
    stateDir = mkdtempSync(join(tmpdir(), 'ct-egress-state-'));
    net = new NetworkManager({ stateDir, subnetBase: BASE, bridgePrefix: BRIDGE, slots: 4 });
    nsOf = (id) => (id === OUT_NS ? id : basename(net.netnsPath(id)));
    mkdirSync(join(www, 'peer'));
    writeFileSync(join(www, 'peer', 'index.html'), 'peer\n');
    mkdirSync(join(www, 'outside'));
    writeFileSync(join(www, 'outside', 'index.html'), 'outside\n');

    for (const egress of ['none', 'environment', 'any'] as const) {
      for (const app of ['client', 'peer']) {
        const id = ID(`${egress}-${app}`);
        const att = await net.attach({ containerId: id, environment: `eg-${egress}`, app, egress, ports: [] });
        // The container's resolv.conf, where `ip netns exec` looks for it (runc bind-mounts it).
        mkdirSync(`/etc/netns/${nsOf(id)}`, { recursive: true });
        writeFileSync(`/etc/netns/${nsOf(id)}/resolv.conf`, readFileSync(att.resolvConf));
        gateway[egress] = readFileSync(att.resolvConf, 'utf8').match(/nameserver (\S+)/)![1];
        if (app === 'peer') httpd(id, join(www, 'peer'));
      }
      // A service of the host, on the address the bridge gives the host.
      const srv = createServer((_req, res) => res.end('host\n'));
      await new Promise<void>((r) => srv.listen(8080, gateway[egress], r));
      servers.push(srv);
    }

    // The outside: a namespace behind a veth, routed by the host (what `any` masquerades to).
    makeOutside(OUTSIDE);
    httpd(OUT_NS, join(www, 'outside'));
    // Every listener answers before anything is judged.
    await untilAnswering([() => fetchFrom(OUT_NS, `http://${OUT.ns}:8080/`), () => fetchFrom(ID('any-peer'), 'http://127.0.0.1:8080/')]);
  }, 60_000);

  afterAll(async () => {
    for (const p of procs) p.kill('SIGKILL');
    for (const s of servers) s.close();
    for (const row of net?.store.attachments() ?? []) await net.detach(row.containerId);
    net?.close();
    removeOutside(OUTSIDE);
    for (const egress of ['none', 'environment', 'any']) for (const app of ['client', 'peer']) rmSync(`/etc/netns/${nsOf(ID(`${egress}-${app}`))}`, { recursive: true, force: true });
    rmSync(www, { recursive: true, force: true });
    expect(listArtifacts(scope)).toEqual({ netns: [], bridges: [], veths: [], rules: [] });
  }, 60_000);

  it('lets each client reach exactly what its egress allows', async () => {
    const probes: [Egress, string, string][] = [];
    for (const egress of ['none', 'environment', 'any'] as const) {
      probes.push([egress, 'peer', 'http://peer:8080/'], [egress, 'host', `http://${gateway[egress]}:8080/`], [egress, 'outside', `http://${OUT.ns}:8080/`]);
    }
    const seen = await Promise.all(probes.map(async ([egress, what, url]) => `${egress} → ${what}: ${await fetchFrom(ID(`${egress}-client`), url)}`));
    expect(seen).toEqual([
      'none → peer: peer', 'none → host: blocked', 'none → outside: blocked',
      'environment → peer: peer', 'environment → host: host', 'environment → outside: blocked',
      'any → peer: peer', 'any → host: host', 'any → outside: outside',
    ]);
  }, 30_000);

  it('keeps environments apart whatever their egress: no client reaches another environment\'s peer', async () => {
    const address = (egress: Egress) => net.attachment(ID(`${egress}-peer`))!.address;
    const seen = await Promise.all([
      fetchFrom(ID('any-client'), `http://${address('none')}:8080/`),
      fetchFrom(ID('environment-client'), `http://${address('any')}:8080/`),
    ]);
    expect(seen).toEqual(['blocked', 'blocked']);
  }, 30_000);

  it('gives a container of an environment the egress its own policies grant, not its neighbours\'', async () => {
    // The environment `eg-any` is told `none` by the policy now: its next container gets `none`;
    // the ones already running keep what they were granted until they are replaced (the egress
    // of the container attached last was every neighbour's: `any-client` lost its egress here).
    const id = ID('any-late');
    const att = await net.attach({ containerId: id, environment: 'eg-any', app: 'late', egress: 'none', ports: [] });
    mkdirSync(`/etc/netns/${nsOf(id)}`, { recursive: true });
    writeFileSync(`/etc/netns/${nsOf(id)}/resolv.conf`, readFileSync(att.resolvConf));
    try {
      expect(await Promise.all([fetchFrom(id, 'http://peer:8080/'), fetchFrom(id, `http://${OUT.ns}:8080/`), fetchFrom(ID('any-client'), `http://${OUT.ns}:8080/`)])).toEqual(['peer', 'blocked', 'outside']);
    } finally {
      await net.detach(id);
      rmSync(`/etc/netns/${nsOf(id)}`, { recursive: true, force: true });
    }
  }, 30_000);
});
