import { createHash } from 'node:crypto';
import { CtError } from '../../src/core/errors.js';
import { runTool } from '../runtime/tools.js';

/**
 * Per-container anti-spoofing on the bridge (what libvirt's clean-traffic nwfilter and the
 * Kubernetes CNIs' spoof checks do). The egress rules (egress.ts) judge a packet by its source
 * address, and a container with CAP_NET_RAW writes any frame: with a neighbour's address, its
 * datagrams left the host as the neighbour's (masqueraded), and by ARP or the neighbour's MAC it
 * took the neighbour's traffic on the bridge. So a frame that enters the bridge from a container's
 * veth must carry that container's MAC and, as IPv4, its address, or be an ARP packet whose sender
 * is that MAC and address; anything else is dropped: IPv6 (off on our networks, ipv6.ts: nothing
 * needs NDP), VLAN-tagged frames, other ethertypes. netavark gives static addresses (no DHCP).
 *
 * Why ebtables (its nf_tables flavour, from Debian's iptables package, already a dependency):
 * bridge-family netfilter hooks see every frame a port brings in, with no host-global switch. The
 * alternatives were worse here: iptables' physdev match needs br_netfilter and
 * bridge-nf-call-iptables=1, a setting of the whole host (every bridge, Docker's and libvirt's
 * too); a tc clsact filter on the veth needs cls_flower, or cls_u32 with the gact action to drop,
 * and the kernel this project's machines and CI run (6.18, CONFIG_NET_CLS_FLOWER and
 * CONFIG_NET_ACT_GACT unset) has neither: tc could match there but not drop.
 *
 * One chain per container, jumped to from the filter table's INPUT (frames for the host: the
 * gateway, aardvark-dns, routed out) and FORWARD (frames for other ports: neighbours) by the
 * host-side veth's name and, where the kernel has nft_meta_bridge, by our bridge
 * (`--logical-in`): a veth name is the kernel's (`veth3`), and the next veth of that name may be
 * another agent's or Podman's, on another bridge, which a jump left behind must not filter. The
 * kernel this project's machines run lacks it (CONFIG_NFT_BRIDGE_META unset), so there the jumps
 * are by name only and kept to live ports: writing a guard for a port removes every `ct-as-` jump
 * on that name, and recover() (manager.ts repairGuards()) removes those of a port that went and
 * seals every port of our bridges that no guard accounts for (sealChain()). The chain's name
 * carries the state directory's scope and a hash of the container id, so that it is found again
 * (detach, recover) and no other agent's is touched.
 */
export interface SpoofGuard {
  /** The container's chain (guardChain()). */
  chain: string;
  /** The host-side veth of the container's eth0, a port of the bridge. */
  port: string;
  /**
   * The MAC of the container's eth0 (lower-case, as /sys and ebtables-save print it), as recorded
   * before the container ran; none for a container an earlier agent started without recording it:
   * then the guard binds the address only (recoverPort()).
   */
  mac?: string;
  address: string;
  /** The bridge the jumps are tied to (`--logical-in`), where the kernel can match it. */
  bridge?: string;
}

/** A bridge port as the host sees it. */
export interface HostPort {
  port: string;
  ifindex: number;
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;
const CHAIN_PREFIX = 'ct-as-';

/** The chain of a container of a state directory (its scope, host/runtime/scope.ts): 23 characters, under ebtables' 31. */
export function guardChain(scope: string, containerId: string): string {
  return `${CHAIN_PREFIX}${scope}-${createHash('sha256').update(containerId).digest('hex').slice(0, 8)}`;
}

/**
 * The scope's DROP chain (the seal): every port of our bridges that no guard of ours accounts for
 * jumps there (guardChanges()). Our bridges hold only our containers, so such a port is never a
 * legitimate one: a row upgraded from an agent that recorded no port whose veth the host-side
 * lookup cannot find (recoverPort()), a record no live veth matches. 21 characters.
 */
export function sealChain(scope: string): string {
  return `${CHAIN_PREFIX}${scope}-drop`;
}

/** A port to seal (sealChain()), tied to its bridge where the kernel can match it. */
export interface SealedPort {
  port: string;
  bridge?: string;
}

/**
 * What guardChanges() does with the seal: `ports` given, the seal is made exactly those ports'
 * (none: the chain goes); not given, only the seal's jumps on the ports of the guards written go
 * (in the same transaction: a port goes from the seal to its guard with no moment between).
 */
export interface Seal {
  chain: string;
  ports?: readonly SealedPort[];
}

/** The first part of every chain of the state directory's containers. */
export function scopeChainPrefix(scope: string): string {
  return `${CHAIN_PREFIX}${scope}-`;
}

function failed(what: string, detail: string, extra: Record<string, unknown>): CtError {
  return new CtError('NETWORK_SETUP_FAILED', `anti-spoofing: ${what}: ${detail.slice(0, 300)}`, { guard: 'anti-spoofing', ...extra });
}

/** `ip -j` calls at once, their JSON arrays (an unreadable one is empty); a failing one is NETWORK_SETUP_FAILED. */
async function ipJson(calls: readonly string[][], extra: Record<string, unknown>): Promise<Record<string, unknown>[][]> {
  const results = await Promise.all(calls.map((args) => runTool('ip', ['-j', ...args], { timeoutMs: 10_000 })));
  if (results.some((r) => r.missing)) throw new CtError('HOST_TOOL_MISSING', 'ip (iproute2) is not installed', { tool: 'ip' });
  for (const r of results) if (r.code !== 0) throw failed('finding the container\'s veth', r.stderr.trim() || `exit ${r.code}`, extra);
  return results.map((r) => {
    try {
      const v: unknown = JSON.parse(r.stdout || '[]');
      return Array.isArray(v) ? (v as Record<string, unknown>[]) : [];
    } catch {
      return [];
    }
  });
}

/**
 * The container's side as the guard needs it: the MAC of its eth0 and the name of the veth's
 * other end on the host, a port of the bridge. Two `ip` calls, at once: eth0's link_index is the
 * host-side veth's ifindex. Read in the namespace, so ONLY at setup, before runc starts anything
 * in it (netavark's eth0 is all it holds then): a running container with CAP_NET_ADMIN sets its
 * MAC to a neighbour's or fakes an eth0 whose link_index is a neighbour's port. What it returns is
 * recorded (store.ts) for recover().
 */
export async function containerPort(netnsPath: string, bridge: string): Promise<HostPort & { mac: string }> {
  if (!netnsPath.startsWith('/run/netns/')) throw failed('namespace', `${netnsPath} is not under /run/netns`, { netns: netnsPath });
  const [inside, ports] = await ipJson([['-n', netnsPath.slice('/run/netns/'.length), 'link', 'show', 'dev', 'eth0'], ['link', 'show', 'master', bridge]], { netns: netnsPath, bridge });
  const eth0 = inside[0];
  const mac = typeof eth0?.address === 'string' ? eth0.address.toLowerCase() : '';
  const peer = eth0?.link_index;
  const port = ports.find((l) => typeof peer === 'number' && l.ifindex === peer)?.ifname;
  if (!MAC.test(mac) || typeof port !== 'string' || !IFNAME.test(port) || typeof peer !== 'number') {
    throw failed('finding the container\'s veth', `no port of ${bridge} is the peer of eth0 in ${netnsPath}`, { netns: netnsPath, bridge });
  }
  return { port, ifindex: peer, mac };
}

/**
 * The port of the bridge whose veth peer is in the namespace, from the host's side only: the
 * namespace's id (`ip netns list`) is the port's link_netnsid. For a container an earlier agent
 * started without recording its port. Its MAC is not looked for: what eth0 says is the container's
 * to change, and so is every MAC the bridge learnt on the port (its fdb) or the host's neighbour
 * table holds for the address, all taken from frames the container wrote. Such a guard binds the
 * address only, until a setup of its network records the MAC (a stop then a start, a new deploy:
 * a `restart` keeps the namespace and its guard). A container that hid its veth from this
 * look-up (its eth0 moved into a namespace of its own) is found by no one: its port is sealed.
 */
export async function recoverPort(netnsPath: string, bridge: string): Promise<HostPort> {
  const name = netnsPath.slice('/run/netns/'.length);
  const [list, ports] = await ipJson([['netns', 'list'], ['link', 'show', 'master', bridge]], { netns: netnsPath, bridge });
  const id = list.find((n) => n.name === name)?.id;
  const found = ports.filter((l) => typeof id === 'number' && l.link_netnsid === id);
  const port = found[0];
  if (found.length !== 1 || typeof port.ifname !== 'string' || !IFNAME.test(port.ifname) || typeof port.ifindex !== 'number') {
    throw failed('finding the container\'s veth', `${found.length} ports of ${bridge} have their peer in ${netnsPath}`, { netns: netnsPath, bridge });
  }
  return { port: port.ifname, ifindex: port.ifindex };
}

/**
 * Whether the kernel matches a frame's bridge (`--logical-in`, nft_meta_bridge), tried once in a
 * scratch chain of the scope; also where a missing ebtables-restore shows (HOST_TOOL_MISSING).
 */
export async function bridgeMatchSupported(scope: string): Promise<boolean> {
  const chain = `${CHAIN_PREFIX}probe-${scope}`;
  const r = await runTool('ebtables-restore', ['--noflush'], { input: `*filter\n:${chain} RETURN\n-A ${chain} --logical-in lo -j RETURN\n-F ${chain}\n-X ${chain}\nCOMMIT\n`, timeoutMs: 30_000 });
  if (r.missing) throw new CtError('HOST_TOOL_MISSING', 'ebtables-restore (Debian\'s iptables package) is not installed', { tool: 'ebtables-restore' });
  return r.code === 0;
}

/**
 * The guard's lines as `ebtables-save` prints them, in its order (the chain, the jumps, the
 * chain's rules): hasStaleGuard() compares them line by line.
 */
function written(g: SpoofGuard): string[] {
  const on = `-i ${g.port}${g.bridge ? ` --logical-in ${g.bridge}` : ''}`;
  return [
    `:${g.chain} RETURN`,
    `-A INPUT ${on} -j ${g.chain}`,
    `-A FORWARD ${on} -j ${g.chain}`,
    g.mac ? `-A ${g.chain} -p IPv4 -s ${g.mac} --ip-src ${g.address} -j RETURN` : `-A ${g.chain} -p IPv4 --ip-src ${g.address} -j RETURN`,
    g.mac ? `-A ${g.chain} -p ARP -s ${g.mac} --arp-ip-src ${g.address} --arp-mac-src ${g.mac} -j RETURN` : `-A ${g.chain} -p ARP --arp-ip-src ${g.address} -j RETURN`,
    `-A ${g.chain} -j DROP`,
  ];
}

/** A saved line with its `-option value` pairs in a fixed order: ebtables-save's own order of `-i` and `--logical-in` is not ours to rely on. */
function canonical(line: string): string {
  const [cmd, chain, ...rest] = line.split(' ');
  const pairs: string[] = [];
  for (let i = 0; i < rest.length; i += 2) pairs.push(`${rest[i]} ${rest[i + 1] ?? ''}`);
  return [cmd, chain, ...pairs.sort()].join(' ');
}

/** The lines of a saved filter table that are the chain's: its declaration, the jumps to it and its rules. */
function savedOf(chain: string, filter: readonly string[]): string[] {
  const word = new RegExp(`(^:| )${chain.replace(/-/g, '\\-')}( |$)`);
  return filter.filter((l) => word.test(l));
}

/** Whether the saved table holds other lines for the guard's chain than guardChanges() writes (none, an old veth or address, a hand edit). */
export function hasStaleGuard(g: SpoofGuard, filter: readonly string[]): boolean {
  const have = savedOf(g.chain, filter).map(canonical);
  const want = written(g).map(canonical);
  return have.length !== want.length || have.some((l, i) => l !== want[i]) || otherJumps(g.port, g.chain, filter).length > 0;
}

/** The jumps of the saved table on the port to any other anti-spoofing chain (a leftover: a name belongs to one live veth). */
function otherJumps(port: string, chain: string, filter: readonly string[]): string[] {
  return filter.filter((l) => /^-A (INPUT|FORWARD) /.test(l) && l.split(' ').some((w, i, a) => w === '-i' && a[i + 1] === port) && /-j ct-as-\S+$/.test(l) && !l.endsWith(` -j ${chain}`));
}

/** The chains of the scope in a saved filter table. */
export function guardChains(scopePrefix: string, filter: readonly string[]): string[] {
  return filter.filter((l) => l.startsWith(`:${scopePrefix}`)).map((l) => l.slice(1).split(' ')[0]);
}

/**
 * The restore lines that remove the chains named (their jumps first; a chain still jumped to
 * cannot go), the jumps of the chains in `unhook` (a guard whose port went: the chain stays, and
 * goes with its container), and then write the guards given, each with its jumps at the top of
 * INPUT and FORWARD: ahead of any ACCEPT another tool puts there. One transaction: a guard being
 * rewritten is never absent. Only chains of this manager's are named: another agent may change
 * its own between the save and this restore, which would fail it (foreignJumpChanges()).
 */
export function guardChanges(filter: readonly string[], remove: readonly string[], add: readonly SpoofGuard[], unhook: readonly string[] = [], seal?: Seal): string[] {
  const lines: string[] = [];
  const drop = new Set<string>();
  const declared = new Set(guardChains(CHAIN_PREFIX, filter));
  for (const chain of new Set([...remove, ...unhook, ...add.map((g) => g.chain)])) {
    for (const l of savedOf(chain, filter)) if (/^-A (INPUT|FORWARD) /.test(l)) drop.add(l);
  }
  const sealJumps = seal ? savedOf(seal.chain, filter).filter((l) => /^-A (INPUT|FORWARD) /.test(l)) : [];
  const guarded = new Set(add.map((g) => g.port));
  const reseal = seal?.ports !== undefined && !sameLines(savedOf(seal.chain, filter), sealed(seal.chain, seal.ports));
  // Rewritten whole (one transaction): its chain emptied by the declaration, its jumps replaced.
  for (const l of sealJumps) if (reseal || guarded.has(portOf(l))) drop.add(l);
  for (const l of drop) lines.push(`-D${l.slice(2)}`);
  for (const chain of new Set(remove)) {
    if (declared.has(chain) && !add.some((g) => g.chain === chain)) lines.push(`-F ${chain}`, `-X ${chain}`);
  }
  for (const g of add) {
    // Declaring a chain that exists empties it (ebtables-restore --noflush).
    const [declare, input, forward, ...rules] = written(g);
    lines.push(declare, ...rules, `-I INPUT 1${input.slice('-A INPUT'.length)}`, `-I FORWARD 1${forward.slice('-A FORWARD'.length)}`);
  }
  if (seal?.ports && reseal) {
    if (seal.ports.length > 0) {
      const [declare, ...rest] = sealed(seal.chain, seal.ports);
      lines.push(declare, `-A ${seal.chain} -j DROP`, ...rest.filter((l) => l.startsWith('-A INPUT ') || l.startsWith('-A FORWARD ')).map((l) => `-I ${l.slice(3, l.indexOf(' ', 3))} 1${l.slice(l.indexOf(' ', 3))}`));
    } else if (declared.has(seal.chain)) {
      lines.push(`-F ${seal.chain}`, `-X ${seal.chain}`);
    }
  }
  return lines;
}

/** The seal's lines as `ebtables-save` prints them: the chain, a jump from INPUT and FORWARD for each port, its DROP. */
function sealed(chain: string, ports: readonly SealedPort[]): string[] {
  if (ports.length === 0) return [];
  const on = (p: SealedPort) => `-i ${p.port}${p.bridge ? ` --logical-in ${p.bridge}` : ''}`;
  return [`:${chain} RETURN`, ...ports.map((p) => `-A INPUT ${on(p)} -j ${chain}`), ...ports.map((p) => `-A FORWARD ${on(p)} -j ${chain}`), `-A ${chain} -j DROP`];
}

/** The ports the seal's jumps name in the saved table (from INPUT: each port has one jump there and one from FORWARD). */
export function sealedPortsOf(filter: readonly string[], chain: string): SealedPort[] {
  return savedOf(chain, filter).filter((l) => l.startsWith('-A INPUT ')).map((l) => {
    const w = l.split(' ');
    const at = w.indexOf('--logical-in');
    return { port: portOf(l), ...(at >= 0 && w[at + 1] ? { bridge: w[at + 1] } : {}) };
  });
}

/** Whether two sets of saved lines are the same, whatever their order and that of their options. */
function sameLines(a: readonly string[], b: readonly string[]): boolean {
  const x = a.map(canonical).sort();
  const y = b.map(canonical).sort();
  return x.length === y.length && x.every((l, i) => l === y[i]);
}

/** The port (`-i`) a saved jump names. */
function portOf(line: string): string {
  const w = line.split(' ');
  return w[w.indexOf('-i') + 1] ?? '';
}

/**
 * The deletions of every other `ct-as-` jump on the guards' ports but the seal's (any agent's leftover: the name
 * is this live veth's now). A restore of their own, before the guards' and best effort: another
 * agent removing its chain meanwhile fails it, and recover() finds what is left (hasStaleGuard()).
 */
export function foreignJumpChanges(filter: readonly string[], guards: readonly SpoofGuard[], seal: string): string[] {
  // Not the seal's: it goes in the guards' own transaction (guardChanges()), never before it.
  return [...new Set(guards.flatMap((g) => otherJumps(g.port, g.chain, filter)))].filter((l) => !l.endsWith(` -j ${seal}`)).map((l) => `-D${l.slice(2)}`);
}

/** The filter table of the bridge family now (one `ebtables-save`), without comments and COMMIT. */
export async function saveGuards(): Promise<string[]> {
  const r = await runTool('ebtables-save', [], { timeoutMs: 30_000 });
  if (r.missing) throw new CtError('HOST_TOOL_MISSING', 'ebtables-save (Debian\'s iptables package) is not installed', { tool: 'ebtables-save' });
  if (r.code !== 0) throw failed('ebtables-save', r.overflowed ? 'printed more than the host reads of a tool' : r.timedOut ? 'timed out' : r.stderr.trim(), {});
  const out: string[] = [];
  let inFilter = false;
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('*')) inFilter = line === '*filter';
    else if (inFilter && line && !line.startsWith('#') && line !== 'COMMIT') out.push(line);
  }
  return out;
}

/** Writes the lines (guardChanges()) in one `ebtables-restore --noflush`; nothing to write is no process. */
export async function restoreGuards(lines: readonly string[]): Promise<void> {
  if (lines.length === 0) return;
  const r = await runTool('ebtables-restore', ['--noflush'], { input: `*filter\n${lines.join('\n')}\nCOMMIT\n`, timeoutMs: 30_000 });
  if (r.missing) throw new CtError('HOST_TOOL_MISSING', 'ebtables-restore (Debian\'s iptables package) is not installed', { tool: 'ebtables-restore' });
  if (r.code !== 0) throw failed('ebtables-restore', r.stderr.trim() || `exit ${r.code}`, {});
}
