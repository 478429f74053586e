import type { Egress } from './types.js';

/** A container up on the bridge: its address and the egress its policies grant it. */
export interface EgressClient {
  address: string;
  egress: Egress;
}

/** The bridge an environment's rules are for, the gateway address aardvark-dns answers on there, and the containers up on it. */
export interface EgressBridge {
  bridge: string;
  gateway: string;
  /** The containers attached to the bridge now (AttachmentRow.address and .egress, phase `up`). */
  clients: readonly EgressClient[];
}

type Rule = { chain: 'INPUT' | 'FORWARD'; spec: string[] };

/**
 * The firewall rules that narrow egress below netavark's default (which masquerades everything to
 * the outside), in the order they stand in their chains, INPUT then FORWARD. They live in the
 * mangle table, which the kernel walks before filter: netavark rewrites filter's FORWARD (its jump
 * and per-network ACCEPTs come and go as other networks are set up and torn down), and a DROP that
 * depends on staying ahead of those was seen bypassed while other networks changed. Each carries a
 * comment naming the bridge, so that it can be listed and removed exactly.
 *
 * Egress is each container's, not its environment's: apps of one environment share its bridge
 * (and its names) but may be granted different egress. Each container's widening is a rule keyed
 * by its address, ahead of a DROP of the bridge that takes everything else: a container whose
 * rule is missing (not written yet, an address that left, a source address no container has) has
 * the egress `none` has, the narrowest. This is why one bridge is kept, not a bridge per egress
 * class: that would split an environment's DNS names (aardvark-dns answers per network) and its
 * apps would no longer reach each other. The rules are derived from the state alone (the rows of
 * the containers up), so recover() rewrites exactly these after a restart.
 */
function ordered(net: EgressBridge, prefix: string): Rule[] {
  const { bridge, gateway } = net;
  const comment = ['-m', 'comment', '--comment', `cerro-torre egress ${bridge}`];
  const clients = [...net.clients].sort((a, b) => byAddress(a.address, b.address));
  const from = (c: EgressClient) => ['-s', `${c.address}/32`];
  return [
    // Whatever the egress: nothing from the bridge to the host's loopback. A bridge with a port
    // published on 127.0.0.1 or 0.0.0.0 has route_localnet (ports.ts), and the host then takes a
    // packet for 127.0.0.0/8 arriving on it as its own: a container that wrote one (CAP_NET_RAW)
    // reached services the host keeps on 127.0.0.1 (CVE-2020-8558 in kube-proxy). Only the answers
    // of the host's own clients of a published port come that way (de-NATed to 127.0.0.1), and
    // they are ESTABLISHED. First: ahead of every ACCEPT and RETURN below.
    { chain: 'INPUT', spec: ['-d', '127.0.0.0/8', '-i', bridge, '-m', 'conntrack', '!', '--ctstate', 'RELATED,ESTABLISHED', ...comment, '-j', 'DROP'] },
    // `none` reaches nothing of the host but aardvark-dns on this bridge's gateway: port 53 of the
    // host's other addresses (another bridge's aardvark-dns, a dnsmasq or systemd-resolved on a
    // LAN address) is a resolver that forwards, a way out through DNS. UDP only: aardvark-dns 1.4
    // serves no TCP, and TCP port 53 of the gateway reaches whatever of the host listens on every
    // address. And only from the address of a container: aardvark-dns 1.4 forwards the query of
    // an address it has no container for to the host's resolvers, whatever the containers'
    // dns_servers (netavark.ts). A container with CAP_NET_RAW writes any source address; the
    // anti-spoofing guard of its veth (anti-spoofing.ts) drops one that is not its own, and this
    // keeps the rule narrow should a guard be missing (an earlier agent's container before the
    // next recover()). The host's rp_filter lets any address of the subnet in through the bridge.
    ...clients.filter((c) => c.egress === 'none').map((c): Rule => ({
      chain: 'INPUT', spec: [...from(c), '-d', `${gateway}/32`, '-i', bridge, '-p', 'udp', '-m', 'udp', '--dport', '53', ...comment, '-j', 'ACCEPT'],
    })),
    // `environment` and `any` reach the host.
    ...clients.filter((c) => c.egress !== 'none').map((c): Rule => ({ chain: 'INPUT', spec: [...from(c), '-i', bridge, ...comment, '-j', 'RETURN'] })),
    // Everything else: nothing to the host but the answers of a connection the host's side opened.
    // Not `--ctstate NEW` alone: a packet conntrack calls INVALID (an RST or a SYN+FIN with data,
    // written by a container with CAP_NET_RAW) is neither, and filter's ACCEPTs took it.
    { chain: 'INPUT', spec: ['-i', bridge, '-m', 'conntrack', '!', '--ctstate', 'RELATED,ESTABLISHED', ...comment, '-j', 'DROP'] },
    // Traffic that stays on the bridge (judged here only with br_netfilter) is the environment's own.
    { chain: 'FORWARD', spec: ['-i', bridge, '-o', bridge, ...comment, '-j', 'RETURN'] },
    // Environments stay apart whatever the egress, without relying on netavark's `isolate` chains,
    // which are shared by every network and were seen gone while another network was torn down.
    { chain: 'FORWARD', spec: ['-i', bridge, '-o', `${prefix}+`, '-m', 'conntrack', '!', '--ctstate', 'RELATED,ESTABLISHED', ...comment, '-j', 'DROP'] },
    // `any` leaves the host (netavark masquerades it).
    ...clients.filter((c) => c.egress === 'any').map((c): Rule => ({ chain: 'FORWARD', spec: [...from(c), '-i', bridge, ...comment, '-j', 'RETURN'] })),
    // Everything else: nothing leaves the bridge but replies to connections made to published
    // ports (ESTABLISHED) and their ICMP errors (RELATED); INVALID packets go too (as for INPUT).
    { chain: 'FORWARD', spec: ['-i', bridge, '!', '-o', bridge, '-m', 'conntrack', '!', '--ctstate', 'RELATED,ESTABLISHED', ...comment, '-j', 'DROP'] },
  ];
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
 * saved(). ordered() writes every option in the order and form iptables-save prints it
 * (`-s -d -i -o -p`, then the matches, `-p udp` with its `-m udp`).
 */
function written(net: EgressBridge, prefix: string): string[] {
  const lines = ordered(net, prefix).map((r) => `-A ${r.chain} ${r.spec.map(quote).join(' ')}`);
  return ['INPUT', 'FORWARD'].flatMap((chain) => lines.filter((l) => l.startsWith(`-A ${chain} `)));
}

/**
 * Whether the saved mangle table holds other rules of the bridge than egressChanges() would write
 * now: one missing, one more, one changed or out of order (an earlier agent's, one egress for the
 * whole bridge, an address that left, a hand edit). Compared line by line, so that the same rules
 * are not rewritten at every inventory.
 */
export function hasStaleRules(net: EgressBridge, prefix: string, mangle: readonly string[]): boolean {
  const have = saved(net.bridge, mangle);
  const want = written(net, prefix);
  return have.length !== want.length || have.some((l, i) => l !== want[i]);
}

/**
 * The mangle lines that make the bridge's egress rules those of its containers now (the old ones
 * out, the new ones in, in the same transaction: no moment without the bridge's DROPs), or that
 * remove every rule of ours for the bridge when `keep` is false (its network went or has nothing
 * up). `mangle` is the table as saved now. Each rule is inserted at the top of its chain, so they
 * are inserted last first.
 */
export function egressChanges(net: EgressBridge, keep: boolean, bridgePrefix: string, mangle: readonly string[]): string[] {
  const lines = deletions(net.bridge, mangle);
  if (keep) for (const r of ordered(net, bridgePrefix).reverse()) lines.push(`-I ${r.chain} 1 ${r.spec.map(quote).join(' ')}`);
  return lines;
}
