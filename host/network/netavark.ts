import { createHash } from 'node:crypto';
import { access, constants } from 'node:fs/promises';
import { CtError } from '../../src/core/errors.js';
import { runTool, type ToolResult } from '../runtime/tools.js';
import type { Egress, PublishedPort } from './types.js';

/** Where Debian, Fedora and upstream put netavark and aardvark-dns (Podman's helper directories). */
const HELPER_DIRS = ['/usr/libexec/podman', '/usr/lib/podman', '/usr/local/libexec/podman', '/usr/local/lib/podman'];

export interface NetavarkPaths {
  netavark: string;
  aardvark: string;
}

async function executable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Finds netavark and aardvark-dns, or HOST_TOOL_MISSING naming what is absent. */
export async function findNetavark(dirs: readonly string[] = HELPER_DIRS): Promise<NetavarkPaths> {
  const found: Partial<NetavarkPaths> = {};
  for (const d of dirs) {
    if (!found.netavark && (await executable(`${d}/netavark`))) found.netavark = `${d}/netavark`;
    if (!found.aardvark && (await executable(`${d}/aardvark-dns`))) found.aardvark = `${d}/aardvark-dns`;
  }
  if (!found.netavark || !found.aardvark) {
    const tool = found.netavark ? 'aardvark-dns' : 'netavark';
    throw new CtError('HOST_TOOL_MISSING', `${tool} is not installed (looked in ${dirs.join(', ')}); install Debian's netavark and aardvark-dns`, { tool, dirs });
  }
  return found as NetavarkPaths;
}

export interface BridgeNetwork {
  /** netavark's network name; aardvark-dns keys its records on it. */
  name: string;
  bridge: string;
  subnet: string;
  gateway: string;
}

const DNS_LABEL = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;

/**
 * The app's name in its environment's DNS, when it is one: a single label. aardvark-dns answers
 * from its records (container_name and aliases) before it asks upstream, and app names may hold
 * dots: an app named `example.com` was every other app's `example.com`. A dotted name is not
 * turned into a label (`a.b` → `a-b` would answer for the app `a-b`); it gets no name.
 */
export function dnsNameOf(app: string): string | undefined {
  return DNS_LABEL.test(app) ? app : undefined;
}

/** The broadcast address of an IPv4 subnet (`10.231.4.0/24` → `10.231.4.255`). */
function broadcastOf(subnet: string): string {
  const [address, bits] = subnet.split('/');
  const n = address.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  const host = 2 ** (32 - Number(bits)) - 1;
  const b = n - (n % (host + 1)) + host;
  return [24, 16, 8, 0].map((s) => Math.floor(b / 2 ** s) % 256).join('.');
}

/**
 * Where aardvark-dns forwards the container's queries for names that are not its environment's:
 * nowhere when its egress is `none`. aardvark-dns asks the host's resolvers for any other name,
 * and a query for `<data>.attacker.example` carries data out whatever the firewall says of the
 * container. aardvark-dns 1.4 cannot be told not to forward for one network (Podman's internal
 * networks get that from 1.5 on; AARDVARK_NO_PROXY would stop it for every network of the host),
 * but it forwards a container's queries to the container's own `dns_servers` when it has some.
 * The subnet's broadcast address is one that nothing is sent to: the host refuses to send a
 * datagram there on a socket without SO_BROADCAST (EACCES), and were it sent, it would go no
 * further than the environment's own bridge. The container gets no answer for such a name (and
 * waits out its resolver's timeout: aardvark-dns 1.4 answers nothing when forwarding fails).
 *
 * `environment` forwards as `any` does: that egress reaches the host, so a resolver the host runs
 * on any of its addresses but loopback answers the container directly. Not forwarding would keep
 * nothing in, and would make every lookup of an outside name (a host service by its DNS name)
 * hang for the resolver's timeout.
 */
export function forwardingServers(egress: Egress, network: Pick<BridgeNetwork, 'subnet'>): string[] | undefined {
  return egress === 'none' ? [broadcastOf(network.subnet)] : undefined;
}

/**
 * The options document of `netavark setup` / `teardown` (netavark 1.x `NetworkOptions`): one
 * bridge network with DNS, isolated from other bridges (`isolate`), a static address (netavark
 * has no IPAM of its own), the app's name as DNS alias (dnsNameOf), where its outside names are
 * forwarded (forwardingServers), and the published ports.
 */
export function netavarkDocument(o: { containerId: string; app: string; address: string; network: BridgeNetwork; egress: Egress; ports: readonly PublishedPort[] }): string {
  const id = createHash('sha256').update(`cerro-torre network ${o.network.name} ${o.network.bridge}`).digest('hex');
  const dnsName = dnsNameOf(o.app);
  // netavark wants a container name, and aardvark-dns makes it a record too: without a DNS name,
  // one no app has nor any outside name is (a label of hex digits from the container id).
  const containerName = dnsName ?? `ct-${createHash('sha256').update(o.containerId).digest('hex').slice(0, 16)}`;
  const dnsServers = forwardingServers(o.egress, o.network);
  return JSON.stringify({
    container_id: o.containerId,
    container_name: containerName,
    ...(dnsServers ? { dns_servers: dnsServers } : {}),
    networks: { [o.network.name]: { interface_name: 'eth0', static_ips: [o.address], aliases: dnsName ? [dnsName] : [] } },
    network_info: {
      [o.network.name]: {
        name: o.network.name,
        id,
        driver: 'bridge',
        network_interface: o.network.bridge,
        subnets: [{ subnet: o.network.subnet, gateway: o.network.gateway }],
        ipv6_enabled: false,
        internal: false,
        dns_enabled: true,
        options: { isolate: 'true' },
      },
    },
    port_mappings: o.ports.map((p) => ({
      // netavark reads "" as every address.
      host_ip: p.address === '0.0.0.0' ? '' : p.address,
      container_port: p.container,
      host_port: p.host,
      range: 1,
      protocol: p.protocol,
    })),
  });
}

/** netavark's own error text ({"error": "..."} on stdout or stderr), bounded. */
export function netavarkError(r: ToolResult): string {
  for (const line of `${r.stdout}\n${r.stderr}`.split('\n').reverse()) {
    try {
      const e = (JSON.parse(line) as { error?: unknown }).error;
      if (typeof e === 'string') return e.slice(0, 500);
    } catch {
      // not a JSON line (netavark also logs plain text, e.g. about syslog)
    }
  }
  return (r.stderr.trim() || r.stdout.trim() || `exit ${r.code ?? r.signal}`).slice(0, 500);
}

/** Runs `netavark setup|teardown <netns>` with the document on stdin. */
export async function netavark(paths: NetavarkPaths, configDir: string, command: 'setup' | 'teardown', netnsPath: string, document: string): Promise<ToolResult> {
  const r = await runTool(paths.netavark, ['--config', configDir, '--aardvark-binary', paths.aardvark, command, netnsPath], { input: document, timeoutMs: 60_000 });
  if (r.missing) throw new CtError('HOST_TOOL_MISSING', `${paths.netavark} is not installed`, { tool: paths.netavark });
  return r;
}
