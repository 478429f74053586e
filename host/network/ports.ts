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

function chainNames(prefix: string): { dnat: string; masq: string } {
  return { dnat: `${prefix}-HOSTPORT`, masq: `${prefix}-MASQ` };
}

function jumps(prefix: string): string[] {
  const c = chainNames(prefix);
  return [
    `PREROUTING -m addrtype --dst-type LOCAL -m comment --comment "${MARK}s ${prefix}" -j ${c.dnat}`,
    `OUTPUT -m addrtype --dst-type LOCAL -m comment --comment "${MARK}s ${prefix}" -j ${c.dnat}`,
    `POSTROUTING -m comment --comment "${MARK}s ${prefix}" -j ${c.masq}`,
  ];
}

/** The iptables-restore text that makes the chains hold exactly these ports (or removes them all). */
export function portRules(prefix: string, targets: readonly PortTarget[], present: { chains: boolean; jumps: readonly string[] }): string {
  const c = chainNames(prefix);
  const lines = ['*nat'];
  const wanted = targets.filter((t) => t.ports.length > 0);
  const want = jumps(prefix);
  if (wanted.length === 0) {
    // Nothing published: the jumps and chains go (deleting what is absent would fail the commit).
    for (const j of want) if (present.jumps.includes(j)) lines.push(`-D ${j}`);
    if (present.chains) lines.push(`-F ${c.dnat}`, `-F ${c.masq}`, `-X ${c.dnat}`, `-X ${c.masq}`);
    lines.push('COMMIT');
    return lines.length > 2 ? `${lines.join('\n')}\n` : '';
  }
  lines.push(`:${c.dnat} - [0:0]`, `:${c.masq} - [0:0]`);
  const subnets = new Set<string>();
  for (const t of wanted) {
    subnets.add(t.subnet);
    for (const p of t.ports) {
      const dst = p.address === '0.0.0.0' ? '' : `-d ${p.address}/32 `;
      lines.push(`-A ${c.dnat} ${dst}-p ${p.protocol} -m ${p.protocol} --dport ${p.host} -m comment --comment "${MARK} ${t.containerId}" -j DNAT --to-destination ${t.address}:${p.container}`);
    }
  }
  // The host's own clients (127.0.0.1) cannot be answered from a bridge: masqueraded to the
  // gateway. So is hairpin traffic (an app calling a published port of its own bridge).
  lines.push(`-A ${c.masq} -s 127.0.0.0/8 -o ${prefix}+ -m comment --comment "${MARK}s ${prefix}" -j MASQUERADE`);
  for (const s of [...subnets].sort()) lines.push(`-A ${c.masq} -s ${s} -d ${s} -m conntrack --ctstate DNAT -m comment --comment "${MARK}s ${prefix}" -j MASQUERADE`);
  for (const j of want) if (!present.jumps.includes(j)) lines.push(`-A ${j}`);
  lines.push('COMMIT');
  return `${lines.join('\n')}\n`;
}

/** What of ours is in a saved nat table. */
function present(prefix: string, nat: readonly string[]): { chains: boolean; jumps: string[]; rules: string[] } {
  const c = chainNames(prefix);
  return {
    chains: nat.some((l) => l.startsWith(`:${c.dnat} `)),
    // iptables-save prints the rule as we wrote it, bar the comment's quoting and -m tcp order.
    jumps: jumps(prefix).filter((j) => nat.some((l) => l === `-A ${j}`)),
    rules: nat.filter((l) => l.startsWith(`-A ${c.dnat} `) || l.startsWith(`-A ${c.masq} `)),
  };
}

/**
 * The nat lines (without `*nat` and COMMIT) that make the host's published ports exactly
 * `targets`, given the nat table as saved now; none when it is so already (the common case at each
 * inventory). Loopback addresses need route_localnet on the bridge (netavark set it for its own
 * mappings): set here, before the rules that need it are written.
 */
export async function portChanges(prefix: string, targets: readonly PortTarget[], nat: readonly string[]): Promise<string[]> {
  for (const b of new Set(targets.filter((t) => t.ports.some((p) => p.address.startsWith('127.') || p.address === '0.0.0.0')).map((t) => t.bridge))) {
    await writeFile(`/proc/sys/net/ipv4/conf/${b}/route_localnet`, '1').catch(() => undefined);
  }
  const now = present(prefix, nat);
  const text = portRules(prefix, targets, now);
  if (!text) return [];
  const c = chainNames(prefix);
  const wanted = text.split('\n').filter((l) => l.startsWith(`-A ${c.dnat} `) || l.startsWith(`-A ${c.masq} `));
  if (now.chains && now.jumps.length === 3 && wanted.length > 0 && wanted.join('\n') === now.rules.join('\n')) return [];
  // portRules writes a whole restore document: its body is what goes between *nat and COMMIT.
  return text.split('\n').filter((l) => l && l !== '*nat' && l !== 'COMMIT');
}
