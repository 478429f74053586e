import { writeFile } from 'node:fs/promises';
import type { PublishedPort } from './types.js';

/**
 * Published ports are our own DNAT rules, not netavark port mappings: netavark ties a mapping to
 * one container's setup, so moving a port from the old container of an app to its new one would
 * mean a teardown of the old mapping and a setup of the new one, with a window where the port is
 * refused. Here every published port of the host is one rule of one chain (`<prefix>-HOSTPORT` in
 * the nat table), and the whole chain is rewritten from the host's state in ONE
 * `iptables-restore --noflush` transaction (declaring a chain flushes it in the same commit): a
 * port moves from the old container to the new one atomically, and connections already made keep
 * their conntrack entries (NAT is decided on a connection's first packet) and so their container.
 * Rebuilding from state also makes the rules crash safe: whatever an agent killed mid-way left, the
 * next sync writes exactly what the state says.
 */
export interface PortTarget {
  /** The container's address on its bridge. */
  address: string;
  bridge: string;
  /** Its bridge's subnet (a.b.c.0/24): hairpin traffic from it is masqueraded. */
  subnet: string;
  /** Names the rule (comment) so that an operator can tell whose it is. */
  containerId: string;
  ports: readonly PublishedPort[];
}

const MARK = 'cerro-torre port';

function chainNames(prefix: string): { dnat: string; masq: string; accept: string } {
  return { dnat: `${prefix}-HOSTPORT`, masq: `${prefix}-MASQ`, accept: `${prefix}-FORWARD` };
}

/** The jumps into our chains, per table, as iptables-save prints them (after `-A `). */
function jumps(prefix: string): { nat: string[]; filter: string[] } {
  const c = chainNames(prefix);
  return {
    nat: [
      `PREROUTING -m addrtype --dst-type LOCAL -m comment --comment "${MARK}s ${prefix}" -j ${c.dnat}`,
      `OUTPUT -m addrtype --dst-type LOCAL -m comment --comment "${MARK}s ${prefix}" -j ${c.dnat}`,
      `POSTROUTING -m comment --comment "${MARK}s ${prefix}" -j ${c.masq}`,
    ],
    // A host whose FORWARD policy is DROP (any host with Docker) would drop a connection from
    // outside to a port published on 0.0.0.0: it is forwarded to the bridge after the DNAT. Our own
    // ACCEPT for exactly those connections (ctstate DNAT, to the container's address and port) is
    // inserted first, ahead of Docker's chains. Environments stay apart all the same: the egress
    // rules (egress.ts) drop new connections between bridges in mangle, before filter is reached.
    filter: [`FORWARD -m comment --comment "${MARK}s ${prefix}" -j ${c.accept}`],
  };
}

interface Present {
  chains: { nat: boolean; filter: boolean };
  jumps: { nat: string[]; filter: string[] };
  rules: { nat: string[]; filter: string[] };
}

/** What of ours is in the saved nat and filter tables. */
function present(prefix: string, saved: { nat: readonly string[]; filter: readonly string[] }): Present {
  const c = chainNames(prefix);
  const j = jumps(prefix);
  // iptables-save prints the rule as we wrote it, bar the comment's quoting and -m tcp order.
  return {
    chains: { nat: saved.nat.some((l) => l.startsWith(`:${c.dnat} `)), filter: saved.filter.some((l) => l.startsWith(`:${c.accept} `)) },
    jumps: { nat: j.nat.filter((x) => saved.nat.includes(`-A ${x}`)), filter: j.filter.filter((x) => saved.filter.includes(`-A ${x}`)) },
    rules: {
      nat: saved.nat.filter((l) => l.startsWith(`-A ${c.dnat} `) || l.startsWith(`-A ${c.masq} `)),
      filter: saved.filter.filter((l) => l.startsWith(`-A ${c.accept} `)),
    },
  };
}

/** The rules of our chains for these ports: nat (DNAT, masquerade) and filter (forward ACCEPT). */
function chainRules(prefix: string, targets: readonly PortTarget[]): { nat: string[]; filter: string[] } {
  const c = chainNames(prefix);
  const nat: string[] = [];
  const filter: string[] = [];
  const subnets = new Set<string>();
  for (const t of targets) {
    subnets.add(t.subnet);
    for (const p of t.ports) {
      const dst = p.address === '0.0.0.0' ? '' : `-d ${p.address}/32 `;
      nat.push(`-A ${c.dnat} ${dst}-p ${p.protocol} -m ${p.protocol} --dport ${p.host} -m comment --comment "${MARK} ${t.containerId}" -j DNAT --to-destination ${t.address}:${p.container}`);
      filter.push(`-A ${c.accept} -d ${t.address}/32 -o ${t.bridge} -p ${p.protocol} -m ${p.protocol} --dport ${p.container} -m conntrack --ctstate DNAT -m comment --comment "${MARK} ${t.containerId}" -j ACCEPT`);
    }
  }
  // The host's own clients (127.0.0.1) cannot be answered from a bridge: masqueraded to the
  // gateway. So is hairpin traffic (an app calling a published port of its own bridge).
  nat.push(`-A ${c.masq} -s 127.0.0.0/8 -o ${prefix}+ -m comment --comment "${MARK}s ${prefix}" -j MASQUERADE`);
  for (const s of [...subnets].sort()) nat.push(`-A ${c.masq} -s ${s} -d ${s} -m conntrack --ctstate DNAT -m comment --comment "${MARK}s ${prefix}" -j MASQUERADE`);
  return { nat, filter };
}

/**
 * The bodies (between `*table` and COMMIT) of the nat and filter sections of an iptables-restore
 * that make the chains hold exactly these ports, or remove them all; empty when nothing is to do.
 */
export function portRules(prefix: string, targets: readonly PortTarget[], now: Present): { nat: string[]; filter: string[] } {
  const c = chainNames(prefix);
  const j = jumps(prefix);
  const wanted = targets.filter((t) => t.ports.length > 0);
  if (wanted.length === 0) {
    // Nothing published: the jumps and chains go (deleting what is absent would fail the commit).
    return {
      nat: [...now.jumps.nat.map((x) => `-D ${x}`), ...(now.chains.nat ? [`-F ${c.dnat}`, `-F ${c.masq}`, `-X ${c.dnat}`, `-X ${c.masq}`] : [])],
      filter: [...now.jumps.filter.map((x) => `-D ${x}`), ...(now.chains.filter ? [`-F ${c.accept}`, `-X ${c.accept}`] : [])],
    };
  }
  const rules = chainRules(prefix, wanted);
  // Already so (the common case at each inventory): no write.
  const same = (t: 'nat' | 'filter') => now.chains[t] && now.jumps[t].length === j[t].length && rules[t].join('\n') === now.rules[t].join('\n');
  if (same('nat') && same('filter')) return { nat: [], filter: [] };
  // Declaring a chain in a --noflush restore flushes it, in the same commit as its new rules.
  return {
    nat: [`:${c.dnat} - [0:0]`, `:${c.masq} - [0:0]`, ...rules.nat, ...j.nat.filter((x) => !now.jumps.nat.includes(x)).map((x) => `-A ${x}`)],
    filter: [`:${c.accept} - [0:0]`, ...rules.filter, ...j.filter.filter((x) => !now.jumps.filter.includes(x)).map((x) => `-I ${x.replace(/^FORWARD /, 'FORWARD 1 ')}`)],
  };
}

/**
 * The nat and filter lines that make the host's published ports exactly `targets`, given the
 * tables as saved now. Loopback addresses need route_localnet on the bridge (netavark set it for
 * its own mappings): set here, before the rules that need it are written.
 */
export async function portChanges(prefix: string, targets: readonly PortTarget[], saved: { nat: readonly string[]; filter: readonly string[] }): Promise<{ nat: string[]; filter: string[] }> {
  for (const b of new Set(targets.filter((t) => t.ports.some((p) => p.address.startsWith('127.') || p.address === '0.0.0.0')).map((t) => t.bridge))) {
    await writeFile(`/proc/sys/net/ipv4/conf/${b}/route_localnet`, '1').catch(() => undefined);
  }
  return portRules(prefix, targets, present(prefix, saved));
}
