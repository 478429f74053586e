import type { Egress } from './types.js';

/** The bridge an environment's rules are for, the gateway address aardvark-dns answers on there, and the containers up on it. */
export interface EgressBridge {
  bridge: string;
  gateway: string;
  /** The addresses of the containers attached to the bridge now (AttachmentRow.address, phase `up`). */
  clients: readonly string[];
}

/**
 * The firewall rules that narrow an environment's egress below netavark's default (which
 * masquerades everything to the outside). They live in the mangle table, which the kernel walks
 * before filter: netavark rewrites filter's FORWARD (its jump and per-network ACCEPTs come and go
 * as other networks are set up and torn down), and a DROP that depends on staying ahead of those
 * was seen bypassed while other networks changed. Each carries a comment naming the bridge, so
 * that it can be listed and removed exactly.
 */
function rules(net: EgressBridge, egress: Egress, prefix: string): { chain: string; spec: string[] }[] {
  const { bridge } = net;
  const comment = ['-m', 'comment', '--comment', `cerro-torre egress ${bridge}`];
  // Whatever the egress: nothing from the bridge to the host's loopback. A bridge with a port
  // published on 127.0.0.1 or 0.0.0.0 has route_localnet (ports.ts), and the host then takes a
  // packet for 127.0.0.0/8 arriving on it as its own: a container that wrote one (CAP_NET_RAW)
  // reached services the host keeps on 127.0.0.1 (CVE-2020-8558 in kube-proxy). Only the answers
  // of the host's own clients of a published port come that way (de-NATed to 127.0.0.1), and they
  // are ESTABLISHED. Inserted last, so first: ahead of the DNS ACCEPTs of `none`.
  const loopback = { chain: 'INPUT', spec: ['-d', '127.0.0.0/8', '-i', bridge, '-m', 'conntrack', '!', '--ctstate', 'RELATED,ESTABLISHED', ...comment, '-j', 'DROP'] };
  return [...modeRules(net, egress, prefix, comment), loopback];
}

function modeRules({ bridge, gateway, clients }: EgressBridge, egress: Egress, prefix: string, comment: string[]): { chain: string; spec: string[] }[] {
  if (egress === 'any') {
    // Environments stay apart without relying on netavark's `isolate` chains, which are shared by
    // every network and were seen gone while another network was torn down: new connections from
    // this bridge to another of ours are dropped (inserted in reverse: the RETURN for traffic that
    // stays on this bridge ends up first).
    return [
      { chain: 'FORWARD', spec: ['-i', bridge, '-o', `${prefix}+`, '-m', 'conntrack', '--ctstate', 'NEW', ...comment, '-j', 'DROP'] },
      { chain: 'FORWARD', spec: ['-i', bridge, '-o', bridge, ...comment, '-j', 'RETURN'] },
    ];
  }
  const out = [
    // New connections leaving the bridge (to the outside or another bridge) are dropped; replies
    // to connections made to published ports are not new.
    { chain: 'FORWARD', spec: ['-i', bridge, '!', '-o', bridge, '-m', 'conntrack', '--ctstate', 'NEW', ...comment, '-j', 'DROP'] },
  ];
  if (egress === 'none') {
    // Nothing reaches the host either, except aardvark-dns on this bridge's gateway: port 53 of the
    // host's other addresses (another bridge's aardvark-dns, a dnsmasq or systemd-resolved on a LAN
    // address) is a resolver that forwards, a way out through DNS. UDP only: aardvark-dns 1.4
    // serves no TCP, and TCP port 53 of the gateway reaches whatever of the host listens on every
    // address.
    out.push({ chain: 'INPUT', spec: ['-i', bridge, '-m', 'conntrack', '--ctstate', 'NEW', ...comment, '-j', 'DROP'] });
    // And only from the addresses of its containers: aardvark-dns 1.4 forwards the query of an
    // address it has no container for to the host's resolvers, whatever the containers'
    // dns_servers (netavark.ts), and a container with CAP_NET_RAW writes any source address.
    // The host's rp_filter lets any address of the subnet in through the bridge.
    for (const client of [...clients].sort(byAddress)) {
      out.push({ chain: 'INPUT', spec: ['-s', `${client}/32`, '-d', `${gateway}/32`, '-i', bridge, '-p', 'udp', '-m', 'udp', '--dport', '53', ...comment, '-j', 'ACCEPT'] });
    }
  }
  return out;
}

/** `-D` lines (for the mangle section of an iptables-restore) for our rules of the bridge in a saved mangle table. */
function deletions(bridge: string, mangle: readonly string[]): string[] {
  return mangle.filter((l) => /^-A (FORWARD|INPUT) /.test(l) && l.includes(`cerro-torre egress ${bridge}"`)).map((l) => `-D${l.slice(2)}`);
}

/** IPv4 addresses in numeric order: the rules of the same containers are the same lines. */
function byAddress(a: string, b: string): number {
  const n = (x: string) => x.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  return n(a) - n(b);
}

const quote = (a: string) => (/\s/.test(a) ? `"${a}"` : a);

/** Our rules of the bridge in a saved mangle table, INPUT then FORWARD, each chain in its order. */
function saved(bridge: string, mangle: readonly string[]): string[] {
  const ours = mangle.filter((l) => l.includes(`cerro-torre egress ${bridge}"`));
  return ['INPUT', 'FORWARD'].flatMap((chain) => ours.filter((l) => l.startsWith(`-A ${chain} `)));
}

/**
 * The lines iptables-save prints for the rules egressChanges() writes, in the same order as
 * saved(): each is inserted at the top of its chain, so a chain holds them last first. rules()
 * writes every option in the order and form iptables-save prints it (`-s -d -i -o -p`, then the
 * matches, `-p udp` with its `-m udp`).
 */
function written(net: EgressBridge, egress: Egress, prefix: string): string[] {
  const lines = rules(net, egress, prefix).map((r) => `-A ${r.chain} ${r.spec.map(quote).join(' ')}`).reverse();
  return ['INPUT', 'FORWARD'].flatMap((chain) => lines.filter((l) => l.startsWith(`-A ${chain} `)));
}

/**
 * Whether the saved mangle table holds other rules of the bridge than egressChanges() would write
 * now: one missing, one more, one changed or out of order (an earlier agent's, another egress's,
 * an address that left, a hand edit). Compared line by line, so that the same rules are not
 * rewritten at every inventory.
 */
export function hasStaleRules(net: EgressBridge, egress: Egress, prefix: string, mangle: readonly string[]): boolean {
  const have = saved(net.bridge, mangle);
  const want = written(net, egress, prefix);
  return have.length !== want.length || have.some((l, i) => l !== want[i]);
}

/**
 * The mangle lines that make the bridge's egress rules those of `egress` (the old ones out, the
 * new ones in, in the same transaction; the last inserted ends up first), or that remove every
 * rule of ours for the bridge when `egress` is undefined. `mangle` is the table as saved now.
 */
export function egressChanges(net: EgressBridge, egress: Egress | undefined, bridgePrefix: string, mangle: readonly string[]): string[] {
  const lines = deletions(net.bridge, mangle);
  if (egress) for (const r of rules(net, egress, bridgePrefix)) lines.push(`-I ${r.chain} 1 ${r.spec.map(quote).join(' ')}`);
  return lines;
}
