/**
 * An app's name in its environment's DNS (aardvark-dns, which answers from its records before it
 * asks upstream). App names may hold dots (`[A-Za-z0-9._-]`), and a name that is also an outside
 * name — a bundle called `example.com`, or `api.payments.example` in the desired state — was
 * answered with that container's address to every app of the environment: their connections to
 * the outside service went to it. Only single labels are names in the environment now.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { NetworkManager, findNetavark } from '../../host/network/index.js';
import { netavarkDocument } from '../../host/network/netavark.js';
import { claimSubnetBase } from '../support/subnets.js';
import { listArtifacts } from './artifacts.js';

const pid = process.pid;
const BASE = claimSubnetBase();
const PREFIX = `ctn${pid % 100000}g`;
const ID = (name: string) => `ctn-${pid}-${name}`;
const scope = { netnsPrefix: `ctn-${pid}-`, bridgePrefix: PREFIX, subnetBase: BASE };

/** The addresses aardvark-dns gives `name`, asked from inside a namespace (busybox nslookup, at most 5 s). */
function lookup(ns: string, name: string, server: string): Promise<string[]> {
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', ns, 'timeout', '5', 'busybox', 'nslookup', '-type=a', name, server], { encoding: 'utf8', timeout: 10_000 }, (_err, stdout) =>
      resolve([...new Set([...(stdout ?? '').matchAll(/^Address:\s+(\d+\.\d+\.\d+\.\d+)$/gm)].map((m) => m[1]))].filter((a) => a !== server)));
  });
}

describe("an app's DNS name in its environment", () => {
  let stateDir: string;
  let net: NetworkManager;

  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error('host/network tests run as root (CI does)');
    await findNetavark();
    stateDir = mkdtempSync(join(tmpdir(), 'ct-dns-names-state-'));
    net = new NetworkManager({ stateDir, subnetBase: BASE, bridgePrefix: PREFIX, slots: 2 });
    for (const [id, app] of [['squatter', 'example.com'], ['peer', 'peer'], ['client', 'client']]) {
      await net.attach({ containerId: ID(id), environment: 'dns', app, egress: 'environment', ports: [] });
    }
  }, 60_000);

  afterAll(async () => {
    for (const row of net?.store.attachments() ?? []) await net.detach(row.containerId);
    net?.close();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
    expect(listArtifacts(scope)).toEqual({ netns: [], bridges: [], veths: [], rules: [] });
  }, 60_000);

  it('answers a single-label app name with its address, and an outside name never with a container', async () => {
    const client = basename(net.attachment(ID('client'))!.netns);
    const gateway = net.bridgeOf(net.store.network('dns')!).gateway;
    const seen = await Promise.all(['peer', 'example.com', 'example.com.'].map(async (n) => [n, await lookup(client, n, gateway)]));
    expect(seen).toEqual([['peer', [net.attachment(ID('peer'))!.address]], ['example.com', []], ['example.com.', []]]);
  }, 30_000);

  it('writes only single labels as names into the netavark document', () => {
    const names = (app: string, containerId = 'c1') => {
      const doc = JSON.parse(netavarkDocument({ containerId, app, address: '10.0.0.2', network: { name: 'n', bridge: 'b0', subnet: '10.0.0.0/24', gateway: '10.0.0.1' }, egress: 'any', ports: [] }));
      return [doc.container_name, ...doc.networks.n.aliases] as string[];
    };
    expect(names('web')).toEqual(['web', 'web']);
    for (const app of ['example.com', 'api.payments.example', `${'a'.repeat(64)}`]) {
      for (const n of names(app, 'id.with.dots')) expect(n).toMatch(/^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/);
      expect(names(app)).not.toContain(app);
    }
  });
});
