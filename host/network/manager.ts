import { existsSync, mkdirSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { createSocket } from 'node:dgram';
import { join } from 'node:path';
import { CtError } from '../../src/core/errors.js';
import { writeFileAtomic } from '../../src/core/fs.js';
import { runTool } from '../runtime/tools.js';
import { scopedName, stateScope } from '../runtime/scope.js';
import { egressChanges, hasStaleRules, type EgressBridge } from './egress.js';
import {
  bridgeMatchSupported, containerPort, foreignJumpChanges, guardChain, guardChains, guardChanges, hasStaleGuard, recoverPort, restoreGuards, saveGuards, scopeChainPrefix, sealChain, sealedPortsOf, type HostPort, type SpoofGuard,
} from './anti-spoofing.js';
import { pinBridgeMac } from './bridge-mac.js';
import { bridgePorts } from './bridge-ports.js';
import { flushConntrack } from './conntrack.js';
import { containerIpv6Sysctls, disableIpv6InNamespace, disableIpv6OnBridge } from './ipv6.js';
import { restoreTables, saveTables, type SavedTables } from './firewall.js';
import { findNetavark, netavark, netavarkDocument, netavarkError, type BridgeNetwork, type NetavarkPaths } from './netavark.js';
import { NetworkStore, type AttachmentRow, type NetworkRow } from './store.js';
import { portChanges } from './ports.js';
import type { Egress, PublishedPort } from './types.js';

export interface NetworkManagerOptions {
  /** The host's state directory: state.db gets the allocation tables, network/ the rest. */
  stateDir: string;
  /** netavark and aardvark-dns (found in Podman's helper directories when absent). */
  paths?: NetavarkPaths;
  /** First two octets of the subnets: environment slot s gets <base>.<s>.0/24. Default 10.231. */
  subnetBase?: string;
  /** How many environments (subnets) this host may hold. Default 256. */
  slots?: number;
  /** How many container addresses per subnet (from .2). Default 253. */
  addresses?: number;
  /** Bridge names are <prefix><slot> (at most 15 characters). Default `ctbr`. */
  bridgePrefix?: string;
}

export interface AttachRequest {
  containerId: string;
  environment: string;
  app: string;
  ports: readonly PublishedPort[];
  egress: Egress;
}

export interface Attached {
  /** The network namespace path for the OCI config (`linux.namespaces[type=network].path`). */
  netnsPath: string;
  address: string;
  /** resolv.conf naming aardvark-dns on the gateway: bind-mounted at /etc/resolv.conf. */
  resolvConf: string;
  /** For the OCI config's `linux.sysctl`: IPv6 off in the namespace but on lo (ipv6.ts), applied by runc. */
  sysctl: Record<string, string>;
}

/** A problem of one container's network that the agent reports (HostAlerts: kind `host.network`) rather than fails on. */
export type NetworkAlert = (containerId: string, code: string, detail: string) => void;

/** A network whose egress rules are rewritten: those of its containers up now (`keep`), or none. */
interface BridgeRules {
  net: NetworkRow;
  keep: boolean;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Binds the port for a moment: a process of the host that listens there is PORT_IN_USE. */
async function probePort(p: PublishedPort): Promise<void> {
  const inUse = (): CtError =>
    new CtError('PORT_IN_USE', `host port ${p.address}:${p.host}/${p.protocol} is in use by a process on the host`, { port: p.host, address: p.address, protocol: p.protocol });
  if (p.protocol === 'tcp') {
    await new Promise<void>((resolve, reject) => {
      const srv: Server = createServer();
      srv.once('error', (e: NodeJS.ErrnoException) => (e.code === 'EADDRINUSE' ? reject(inUse()) : resolve()));
      srv.listen({ host: p.address, port: p.host, exclusive: true }, () => srv.close(() => resolve()));
    });
  } else if (p.protocol === 'udp') {
    await new Promise<void>((resolve, reject) => {
      const sock = createSocket('udp4');
      sock.once('error', (e: NodeJS.ErrnoException) => (sock.close(), e.code === 'EADDRINUSE' ? reject(inUse()) : resolve()));
      sock.bind({ address: p.address, port: p.host, exclusive: true }, () => sock.close(() => resolve()));
    });
  }
}

/**
 * Container networking with netavark (deliverable 1 of issue 11): one bridge network per
 * environment, addresses allocated here (netavark needs static IPs) and kept in the host's SQLite
 * state, aardvark-dns for names, published ports as netavark port mappings. Every `setup`
 * document is stored before netavark runs, so that `teardown` can replay it after any crash:
 * nothing netavark made (netns, veth, bridge, firewall rule) outlives the container it was for.
 */
export class NetworkManager {
  readonly store: NetworkStore;
  private readonly dir: string;
  private readonly base: string;
  private readonly slots: number;
  private readonly addresses: number;
  private readonly prefix: string;
  /** This state directory's mark on namespace names (another directory's container of the same id has its own). */
  private readonly scope: string;
  private paths?: NetavarkPaths;
  private turn: Promise<unknown> = Promise.resolve();
  /**
   * Containers whose namespace this manager knows to have IPv6 off: attached here (their configs
   * carry Attached.sysctl), or turned off by recover() once. Not a resumed one: its config may be
   * an earlier agent's, without the sysctls (recover() turns it off once, off the start path).
   */
  private readonly ipv6Off = new Set<string>();
  /**
   * The anti-spoofing guard (anti-spoofing.ts) of each container up that this manager wrote or
   * found as it should be: when the host's rules cannot be read or written, recover() reports only
   * the others. What a guard binds is the attachment's row (AttachmentRow.guard), not this.
   */
  private readonly guards = new Map<string, SpoofGuard>();
  /**
   * Addresses whose conntrack entries were deleted after the container left AND the firewall no
   * longer named the address (its published ports' DNAT, its egress rules: firewall() ran first,
   * see released()), not used since: the next start on one needs no flush of its own
   * (conntrack.ts). An entry made after that flush has the address only as the destination
   * someone chose (a neighbour or the host sending to the free address: no DNAT leads there any
   * more), which the next container may answer as it may any flow opened to it; never one the
   * container that left opened, nor one of its published ports (the guards keep any other
   * container from writing the address). Empty after a restart: every address is flushed at its
   * first start then.
   */
  private readonly flushed = new Set<string>();
  /** Whether the kernel ties the guards' jumps to the bridge (bridgeMatchSupported()), asked once. */
  private bridgeMatch?: Promise<boolean>;
  /** What recover() last reported of each container's guard (reported again only when it changes). */
  private readonly guardProblems = new Map<string, string>();
  private alert?: NetworkAlert;

  constructor(private readonly opts: NetworkManagerOptions) {
    this.dir = join(opts.stateDir, 'network');
    mkdirSync(opts.stateDir, { recursive: true, mode: 0o700 });
    this.store = new NetworkStore(join(opts.stateDir, 'state.db'));
    this.scope = stateScope(opts.stateDir);
    this.base = opts.subnetBase ?? '10.231';
    this.slots = Math.min(opts.slots ?? 256, 256);
    this.addresses = Math.min(opts.addresses ?? 253, 253);
    this.prefix = opts.bridgePrefix ?? 'ctbr';
    this.paths = opts.paths;
    if (!/^\d{1,3}\.\d{1,3}$/.test(this.base)) throw new CtError('USAGE', `subnet base ${this.base} must be two octets such as 10.231`, {});
    if (this.prefix.length + String(this.slots - 1).length > 15) throw new CtError('USAGE', `bridge prefix ${this.prefix} is too long for an interface name`, {});
  }

  close(): void {
    this.store.close();
  }

  /** Where recover() reports a container whose guard it cannot repair (the agent's alerts). */
  onAlert(fn: NetworkAlert): void {
    this.alert = fn;
  }

  /**
   * The host tools every bridge start and teardown needs beyond netavark (conntrack,
   * ebtables-restore), checked at agent start: HOST_TOOL_MISSING there, not at the first start.
   */
  async checkTools(): Promise<void> {
    const r = await runTool('conntrack', ['--version'], { timeoutMs: 10_000 });
    if (r.missing) throw new CtError('HOST_TOOL_MISSING', 'conntrack (Debian\'s conntrack package) is not installed: bridge networking deletes the flows of a container\'s address with it', { tool: 'conntrack' });
    await this.tiedToBridge();
  }

  private tiedToBridge(): Promise<boolean> {
    const p = (this.bridgeMatch ??= bridgeMatchSupported(this.scope));
    // A failed probe (no ebtables-restore) is asked again next time.
    p.catch(() => { if (this.bridgeMatch === p) this.bridgeMatch = undefined; });
    return p;
  }

  /** One change at a time: netavark takes its own lock too, but the allocations are ours. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.turn.then(fn, fn);
    this.turn = next.catch(() => undefined);
    return next;
  }

  bridgeOf(n: Pick<NetworkRow, 'slot'>): BridgeNetwork & { environment?: string } {
    const net = `${this.base}.${n.slot}`;
    return { name: `${this.prefix}-${n.slot}`, bridge: `${this.prefix}${n.slot}`, subnet: `${net}.0/24`, gateway: `${net}.1` };
  }

  /** Where a new attachment's namespace goes; an existing one's is its row's (`netns`). */
  netnsPath(containerId: string): string {
    return `/run/netns/${scopedName(this.scope, containerId)}`;
  }

  private resolvPath(containerId: string): string {
    return join(this.dir, 'resolv', `${containerId}.conf`);
  }

  private async tools(): Promise<NetavarkPaths> {
    this.paths ??= await findNetavark();
    return this.paths;
  }

  /** `netavark teardown` with the stored document, then the netns goes. Errors are not fatal: what is absent is done. */
  private async teardown(row: AttachmentRow): Promise<void> {
    const paths = await this.tools();
    const name = row.netns.slice('/run/netns/'.length);
    // Teardown needs the netns to find the veth; one that vanished (reboot) still has host-side rules.
    if (!existsSync(row.netns)) await runTool('ip', ['netns', 'add', name], { timeoutMs: 10_000 });
    // A netavark that is missing set nothing up: only the netns is ours to remove.
    const run = () => netavark(paths, this.dir, 'teardown', row.netns, row.document).catch((e: unknown) => {
      if ((e as CtError).code === 'HOST_TOOL_MISSING') return undefined;
      throw e;
    });
    let r = await run();
    // Another netavark (a concurrent agent or podman) may hold the lock briefly.
    for (let i = 0; i < 3 && r && r.code !== 0 && /lock/i.test(netavarkError(r)); i++) {
      await sleep(100);
      r = await run();
    }
    await runTool('ip', ['netns', 'delete', name], { timeoutMs: 10_000 });
    // Its veth went with the namespace; the chain and the jumps naming the veth stay until
    // removed. Best effort like the rest: one left behind filters only a veth of that name, and
    // recover() removes it.
    this.guards.delete(row.containerId);
    this.guardProblems.delete(row.containerId);
    // Its flows are deleted by released(), once the firewall no longer names the address.
    this.flushed.delete(row.address);
    // Once more on a fresh save when it fails: another agent may have deleted a jump on the name
    // (a veth of that name is its own now) between the save and the restore, which fails it whole.
    // The seal's jumps on ports that are no longer ports of our bridges go too (this container's,
    // if its port was sealed): by name only on a kernel without --logical-in, one left behind
    // dropped every frame of the next veth of that name on any bridge (Podman's, another agent's)
    // until this agent's next inventory, or for good after a `ct host stop` with no agent. Only
    // jumps are removed: a live port stays sealed.
    const unguard = async () => {
      const saved = await saveGuards();
      const live = new Set((await Promise.all(this.store.networks().map((n) => bridgePorts(this.bridgeOf(n).bridge)))).flat().map((p) => p.port));
      const seal = sealChain(this.scope);
      const ports = sealedPortsOf(saved, seal).filter((p) => live.has(p.port));
      await restoreGuards(guardChanges(saved, [guardChain(this.scope, row.containerId)], [], [], { chain: seal, ports }));
    };
    await unguard().catch(unguard).catch(() => undefined);
  }

  /**
   * The flows of addresses that left (conntrack.ts), deleted AFTER firewall() took their published
   * ports and egress rules away: until then a datagram to a published UDP port made a new entry
   * DNATed to the freed address, which the next container on it (egress `none`) could answer.
   * Best effort: an address not flushed here is flushed at the next start on it, which is refused
   * when that fails.
   */
  private async released(addresses: readonly string[]): Promise<void> {
    await Promise.all(addresses.map((a) => flushConntrack(a).then(() => this.flushed.add(a), () => undefined)));
  }

  /**
   * Would these ports be free for this container? Another container's (PORT_IN_USE naming it), or
   * a host process listening there (PORT_IN_USE). Asked before a running container is replaced,
   * so that a port that cannot be had leaves the old one untouched; attach checks again.
   */
  checkPorts(containerId: string, ports: readonly PublishedPort[]): Promise<void> {
    return this.exclusive(async () => {
      this.store.checkPortsFree(containerId, ports);
      for (const p of ports) await probePort(p);
    });
  }

  /**
   * Gives the container its network namespace on the environment's bridge, with an address, its
   * DNS name and its published ports. Refused before anything is set up when a port is taken
   * (PORT_IN_USE) or the pool is full (ADDRESS_POOL_EXHAUSTED); a failing netavark is torn down
   * again and reported as NETWORK_SETUP_FAILED: nothing runs half-networked.
   */
  attach(req: AttachRequest): Promise<Attached> {
    return this.exclusive(() => this.attachNow(req));
  }

  private async attachNow(req: AttachRequest): Promise<Attached> {
    if (process.getuid?.() !== 0) {
      throw new CtError('NETWORK_ROOTLESS_UNSUPPORTED', 'network = "bridge" needs a root agent (netavark creates bridges and firewall rules); this agent is rootless', {});
    }
    const paths = await this.tools();
    if (this.store.attachment(req.containerId)) await this.detachNow(req.containerId);
    for (const p of req.ports) await probePort(p);
    const network = this.store.ensureNetwork(req.environment, this.slots);
    const bridge = this.bridgeOf(network);
    const net = bridge.subnet.slice(0, -'.0/24'.length);
    const candidates = Array.from({ length: this.addresses }, (_, i) => `${net}.${i + 2}`);
    let row: AttachmentRow;
    try {
      row = this.store.reserve(
        { containerId: req.containerId, environment: req.environment, app: req.app, netns: this.netnsPath(req.containerId), ports: [...req.ports], egress: req.egress },
        candidates,
        // Ports are ours (ports.ts), not netavark mappings: they can move to another container atomically.
        (address) => netavarkDocument({ containerId: req.containerId, app: req.app, address, network: bridge, egress: req.egress, ports: [] }),
      );
    } catch (e) {
      this.store.dropNetworkIfEmpty(req.environment);
      throw e;
    }
    const resolvConf = this.resolvPath(req.containerId);
    try {
      // resolv.conf depends only on the gateway: written while netavark works (a failed setup removes it again).
      const resolv = mkdir(join(this.dir, 'resolv'), { recursive: true, mode: 0o700 })
        .then(() => writeFileAtomic(resolvConf, `nameserver ${bridge.gateway}\nsearch dns.podman\noptions ndots:1\n`, 0o644));
      const [set] = await Promise.allSettled([this.setup(paths, row, network), resolv]);
      if (set.status === 'rejected') throw set.reason;
      await resolv;
    } catch (e) {
      await this.detachNow(req.containerId);
      throw e;
    }
    this.ipv6Off.add(req.containerId);
    return { netnsPath: row.netns, address: row.address, resolvConf, sysctl: containerIpv6Sysctls() };
  }

  private async setup(paths: NetavarkPaths, row: AttachmentRow, net: NetworkRow): Promise<void> {
    // The firewall is read while the netns and netavark are set up (one process spawn off the start
    // path): netavark never touches our chains or our commented rules, and every change of ours is
    // serialised by exclusive(), so the lines of ours this snapshot holds are those of after setup.
    const saved = saveTables();
    saved.catch(() => undefined);
    const savedGuards = saveGuards();
    savedGuards.catch(() => undefined);
    // No flow of an earlier holder of the address survives into this container (conntrack.ts):
    // flushed while netavark works unless this manager's teardown did (`this.flushed`). The
    // `conntrack` dump costs ~15 ms of CPU, which on a 2-core host slowed netavark beside it.
    const flushed = this.flushed.delete(row.address) ? Promise.resolve() : flushConntrack(row.address);
    flushed.catch(() => undefined);
    await this.netavarkSetup(paths, row);
    // Before the container starts: it writes no frame but with its own MAC and address
    // (anti-spoofing.ts). Written while the steps below run (its `ip` and `ebtables-restore`
    // processes cost ~20 ms of the start otherwise): nothing runs in the container before attach
    // or resume returns, and a neighbour's veth has a guard of its own, so no frame with this
    // address passes meanwhile. A failure fails the start (attach and resume tear everything down
    // again): it never runs unguarded.
    const guarded = savedGuards.then((g) => this.guard(row, net, g));
    guarded.catch(() => undefined);
    try {
      await flushed;
      // Before the container starts: no IPv6 path around the IPv4-only egress rules (ipv6.ts). The
      // namespace's half is the container's OCI config (Attached.sysctl), which runc applies.
      await disableIpv6OnBridge(this.bridgeOf(net).bridge);
      // The gateway's MAC stays what it is when this container (or any) leaves (bridge-mac.ts). Best
      // effort: it keeps neighbours reachable, it confines nothing, so a failure (an `ip` timeout)
      // must not fail the start; the next setup or recover() tries again (the MAC is not yet set).
      await pinBridgeMac(this.bridgeOf(net).bridge).catch(() => undefined);
      this.store.setPhase(row.containerId, 'up');
      // The bridge's egress rules (this container's address now among its clients, with its own
      // egress) and the published ports (its own among them) in one transaction.
      await this.firewall([{ net, keep: true }], await saved);
      await guarded;
    } catch (e) {
      // Whatever failed, the caller tears down next: the guard's write must have landed (or
      // failed) first, or it would land after the teardown removed the chain (a leftover chain, a
      // guards entry).
      await Promise.allSettled([guarded]);
      throw e;
    }
  }

  /**
   * Writes the container's anti-spoofing guard (its veth and MAC as they are now: nothing runs in
   * the namespace yet), replacing any it had, and records them for recover().
   */
  private async guard(row: AttachmentRow, net: NetworkRow, saved: readonly string[]): Promise<void> {
    const bridge = this.bridgeOf(net).bridge;
    const [{ port, ifindex, mac }, tied] = await Promise.all([containerPort(row.netns, bridge), this.tiedToBridge()]);
    const g: SpoofGuard = { chain: guardChain(this.scope, row.containerId), port, mac, address: row.address, ...(tied ? { bridge } : {}) };
    this.store.setGuardPort(row.containerId, { port, ifindex, mac });
    await restoreGuards(foreignJumpChanges(saved, [g], sealChain(this.scope))).catch(() => undefined);
    await restoreGuards(guardChanges(saved, [], [g], [], { chain: sealChain(this.scope) }));
    this.guards.set(row.containerId, g);
  }

  /**
   * recover()'s part for the guards: every container up and running has its own, exactly, on the
   * port and with the MAC recorded at its setup (never what the running container says of its
   * eth0: anti-spoofing.ts containerPort()). The recorded port is found by its ifindex among the
   * bridge's ports (its name re-derived); one an earlier agent started without recording it, or
   * whose record no port matches, is looked for from the host side (recoverPort()) and gets a
   * guard of its address only. Then every port of our bridges that no guard accounts for (the
   * container hid its veth from that look-up, a record no live veth matches) jumps to the scope's
   * DROP chain (the seal), in the same transaction as any jumps removed: a live port is never left
   * without one or the other. No chain of this state directory is left for a container that is
   * not up. One ebtables-save, at most one restore. A container whose guard cannot be repaired is
   * reported (onAlert, once per problem): recover() runs at agent start and every inventory, which
   * one container must not stop.
   */
  private async repairGuards(running: readonly AttachmentRow[]): Promise<void> {
    const problems = new Map<string, [string, string]>();
    const add: [string, SpoofGuard][] = [];
    const unhook: string[] = [];
    try {
      const [saved, tied] = await Promise.all([saveGuards(), this.tiedToBridge()]);
      const bridges = new Map<string, HostPort[]>();
      for (const net of this.store.networks()) {
        const bridge = this.bridgeOf(net).bridge;
        bridges.set(bridge, await bridgePorts(bridge));
      }
      const accounted = new Set<string>();
      for (const row of running) {
        const net = this.store.network(row.environment);
        if (!net) continue;
        const bridge = this.bridgeOf(net).bridge;
        const chain = guardChain(this.scope, row.containerId);
        try {
          const recorded = row.guard;
          const live = recorded && bridges.get(bridge)?.find((p) => p.ifindex === recorded.ifindex);
          let port: HostPort & { mac?: string };
          if (recorded && live) {
            port = { ...recorded, port: live.port };
          } else {
            try {
              port = await recoverPort(row.netns, bridge);
            } catch (e) {
              // Its jumps name a port that is not its veth (the name may be another's now); its veth, if on the bridge, is sealed below.
              this.guards.delete(row.containerId);
              unhook.push(chain);
              if (!recorded) throw e;
              problems.set(row.containerId, ['NETWORK_GUARD_PORT_GONE', `the veth ${recorded.port} of container ${row.containerId} is no longer on ${bridge} and no port of it has its peer in the container's namespace (its eth0 was deleted or moved): its guard's jumps were removed, its port (if any is left) is sealed until its network is set up again (a stop and a start; a restart keeps it)`]);
              continue;
            }
          }
          if (port.port !== recorded?.port || port.ifindex !== recorded.ifindex) this.store.setGuardPort(row.containerId, port);
          accounted.add(port.port);
          const g: SpoofGuard = { chain, port: port.port, mac: port.mac, address: row.address, ...(tied ? { bridge } : {}) };
          if (hasStaleGuard(g, saved)) add.push([row.containerId, g]);
          else this.guards.set(row.containerId, g);
        } catch (e) {
          problems.set(row.containerId, [(e as CtError).code ?? 'NETWORK_SETUP_FAILED', `the anti-spoofing guard of container ${row.containerId} could not be repaired (${String((e as Error).message).slice(0, 300)}): its bridge port, if any, is sealed (every frame from it dropped) until the guard is repaired (looked for again at every inventory) or the container's network is set up again (a stop and a start; a restart keeps it)`]);
        }
      }
      const seal = [...bridges].flatMap(([bridge, ports]) => ports.filter((p) => !accounted.has(p.port)).map((p) => ({ port: p.port, ...(tied ? { bridge } : {}) })));
      const keep = new Set(running.map((r) => guardChain(this.scope, r.containerId)));
      const orphans = guardChains(scopeChainPrefix(this.scope), saved).filter((c) => !keep.has(c) && c !== sealChain(this.scope));
      // Chains already without jumps are not unhooked again (no restore when nothing changed).
      const hooked = unhook.filter((c) => saved.some((l) => /^-A (INPUT|FORWARD) /.test(l) && l.endsWith(` -j ${c}`)));
      await restoreGuards(foreignJumpChanges(saved, add.map(([, g]) => g), sealChain(this.scope))).catch(() => undefined);
      await restoreGuards(guardChanges(saved, orphans, add.map(([, g]) => g), hooked, { chain: sealChain(this.scope), ports: seal }));
      for (const [id, g] of add) this.guards.set(id, g);
    } catch (e) {
      for (const row of running) {
        if (!problems.has(row.containerId) && !this.guards.has(row.containerId)) {
          problems.set(row.containerId, [(e as CtError).code ?? 'NETWORK_SETUP_FAILED', `the anti-spoofing guards could not be checked or written (${String((e as Error).message).slice(0, 300)}): the chains are kept as they were`]);
        }
      }
    }
    for (const row of running) {
      const p = problems.get(row.containerId);
      if (!p) {
        this.guardProblems.delete(row.containerId);
        continue;
      }
      if (this.guardProblems.get(row.containerId) === p[0]) continue;
      this.guardProblems.set(row.containerId, p[0]);
      this.alert?.(row.containerId, p[0], p[1]);
    }
  }

  /** `ip netns add` (a leftover of a crash replaced) and `netavark setup` with the stored document. */
  private async netavarkSetup(paths: NetavarkPaths, row: AttachmentRow): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const name = row.netns.slice('/run/netns/'.length);
    // A netns left by a crash is replaced (one process spawn less on the common path, where there is none).
    if (existsSync(row.netns)) await runTool('ip', ['netns', 'delete', name], { timeoutMs: 10_000 });
    const add = await runTool('ip', ['netns', 'add', name], { timeoutMs: 10_000 });
    if (add.missing) throw new CtError('HOST_TOOL_MISSING', 'ip (iproute2) is not installed', { tool: 'ip' });
    if (add.code !== 0) throw new CtError('NETWORK_SETUP_FAILED', `ip netns add ${name}: ${add.stderr.trim().slice(0, 300)}`, { netns: name });
    const r = await netavark(paths, this.dir, 'setup', row.netns, row.document);
    if (r.code !== 0) {
      throw new CtError('NETWORK_SETUP_FAILED', `netavark setup for ${row.containerId} failed: ${netavarkError(r)}`, { container: row.containerId, netavark: netavarkError(r) });
    }
  }

  /**
   * Makes the firewall what the state says: the published ports of every container that is up
   * (ports.ts), and for each network named, its egress rules for the containers up on it now (or
   * none: `keep` false, when its network goes). One iptables-save and at most one
   * iptables-restore (firewall.ts).
   */
  private async firewall(bridges: readonly BridgeRules[] = [], saved?: SavedTables): Promise<void> {
    saved ??= await saveTables();
    const mangle = bridges.flatMap((b) => egressChanges(this.egressBridge(b.net), b.keep, this.prefix, saved.mangle));
    const targets = this.store.attachments().filter((a) => a.phase === 'up' && a.ports.length > 0).flatMap((a) => {
      const net = this.store.network(a.environment);
      if (!net) return [];
      const b = this.bridgeOf(net);
      return [{ address: a.address, bridge: b.bridge, subnet: b.subnet, containerId: a.containerId, ports: a.ports }];
    });
    await restoreTables({ mangle, ...(await portChanges(this.prefix, targets, saved)) });
  }

  /** The network's bridge as its egress rules see it: the containers up on it, each with its own egress (egress.ts). */
  private egressBridge(net: NetworkRow): EgressBridge {
    const { bridge, gateway } = this.bridgeOf(net);
    const clients = this.store.attachments()
      .filter((a) => a.environment === net.environment && a.phase === 'up')
      .map((a) => ({ address: a.address, egress: a.egress }));
    return { bridge, gateway, clients };
  }

  /**
   * The egress rules to write after a container of the network left it (detached or suspended):
   * none when the network went or has nothing up any more; else the rules of the containers still
   * up, without those of the address that left (another container may get it, or a raw socket
   * write it), and with every neighbour's own.
   */
  private afterLeaving(net: NetworkRow | undefined, gone: boolean): BridgeRules[] {
    if (!net) return [];
    if (gone || !this.store.attachments().some((a) => a.environment === net.environment && a.phase !== 'down')) return [{ net, keep: false }];
    return [{ net, keep: true }];
  }

  /**
   * Moves the published ports of one container to another of the same app (a side-by-side
   * replace, host/lifecycle/side-by-side.ts): one transaction in the state, then one atomic rewrite
   * of the DNAT rules. New connections reach `to` from then on; established ones keep their
   * container (conntrack).
   */
  movePorts(from: string, to: string, ports?: readonly PublishedPort[]): Promise<void> {
    return this.exclusive(async () => {
      const before = this.store.attachment(from)?.ports ?? [];
      this.store.movePorts(from, to, ports);
      try {
        await this.firewall();
      } catch (e) {
        // The rules could not be written: the ports stay (in the state too) where they were.
        this.store.movePorts(to, from, before);
        await this.firewall().catch(() => undefined);
        throw e;
      }
    });
  }

  /**
   * Undoes everything the container's setup made, by replaying its stored document through
   * `netavark teardown` (which removes the bridge and its rules with the last container), then
   * deletes the netns and frees the address and ports. Idempotent; safe after a crash at any point.
   */
  detach(containerId: string): Promise<void> {
    return this.exclusive(() => this.detachNow(containerId));
  }

  /**
   * A suspended attachment whose namespace exists all the same: an agent killed while it resumed
   * it (the namespace and veth were made before the row could say 'up'). The row's namespace is
   * what resume made, under the name the row records (a bare container id in rows of earlier
   * agents, which resume uses as well).
   */
  private orphaned(row: AttachmentRow): boolean {
    return row.phase === 'down' && existsSync(row.netns);
  }

  private async detachNow(containerId: string): Promise<void> {
    const row = this.store.attachment(containerId);
    if (!row) return;
    if (row.phase !== 'down' || this.orphaned(row)) await this.teardown(row);
    await rm(this.resolvPath(containerId), { force: true });
    this.store.release(containerId);
    this.ipv6Off.delete(containerId);
    const net = this.store.network(row.environment);
    const gone = net !== undefined && this.store.dropNetworkIfEmpty(row.environment);
    // Only a row that was up had its address in the rules (setup() writes them once it is; suspend() took them out).
    const egress = row.phase !== 'up' && !gone ? [] : this.afterLeaving(net, gone);
    if (row.ports.length > 0 || egress.length > 0) await this.firewall(egress);
    // A row that was down was flushed when it went down.
    if (row.phase !== 'down') await this.released([row.address]);
  }

  /**
   * Tears the network of a stopped container down but keeps its address and ports for a restart
   * (resume): a stopped container holds no netns, veth or rule, as in Podman.
   */
  suspend(containerId: string): Promise<void> {
    return this.exclusive(async () => {
      const row = this.store.attachment(containerId);
      if (!row || (row.phase === 'down' && !this.orphaned(row))) return;
      await this.teardown(row);
      this.store.setPhase(containerId, 'down');
      const egress = this.afterLeaving(this.store.network(row.environment), false);
      if (row.ports.length > 0 || egress.length > 0) await this.firewall(egress);
      await this.released([row.address]);
    });
  }

  /** Sets a suspended container's network up again from its stored document (before runc starts it). */
  resume(containerId: string): Promise<void> {
    return this.exclusive(async () => {
      const row = this.store.attachment(containerId);
      if (!row || row.phase === 'up') return;
      this.ipv6Off.delete(containerId);
      const net = this.store.network(row.environment)!;
      try {
        await this.setup(await this.tools(), row, net);
      } catch (e) {
        await this.teardown(row);
        this.store.setPhase(containerId, 'down');
        // setup() may have written its rules before it failed: they go before the flush.
        await this.firewall(this.afterLeaving(net, false)).then(() => this.released([row.address]), () => undefined);
        throw e;
      }
    });
  }

  /**
   * After an agent restart (or a crash in the middle of a setup), and at every inventory: tears
   * down the network of every container that is gone (including attachments left in phase
   * `setup`), and suspends that of stopped ones. IPv6 goes off on every bridge in use (a /proc
   * write each) and, once per container, in the namespace of a running one this manager did not
   * set up (an earlier agent's, which left IPv6 on: ipv6.ts).
   */
  recover(state: (containerId: string) => 'running' | 'stopped' | 'gone'): Promise<string[]> {
    const torn: string[] = [];
    const suspended: string[] = [];
    return this.exclusive(async () => {
      for (const row of this.store.attachments()) {
        const s = state(row.containerId);
        if (s === 'running' && row.phase === 'up') {
          // Best effort: the bridge (below) keeps the host out of reach either way.
          if (!this.ipv6Off.has(row.containerId) && existsSync(row.netns)) await disableIpv6InNamespace(row.netns).catch(() => undefined);
          this.ipv6Off.add(row.containerId);
          continue;
        }
        if (s === 'gone' || row.phase === 'setup') {
          await this.detachNow(row.containerId);
          torn.push(row.containerId);
        } else if (s === 'stopped' && (row.phase === 'up' || this.orphaned(row))) {
          await this.teardown(row);
          this.store.setPhase(row.containerId, 'down');
          torn.push(row.containerId);
          suspended.push(row.address);
        }
      }
      const inUse = new Set(this.store.attachments().filter((a) => a.phase === 'up').map((a) => a.environment));
      for (const net of this.store.networks()) {
        if (!inUse.has(net.environment)) continue;
        await disableIpv6OnBridge(this.bridgeOf(net).bridge, { ifExists: true });
        // Best effort, and after the IPv6 step: a failure here must not stop the security repairs below.
        await pinBridgeMac(this.bridgeOf(net).bridge, { ifExists: true }).catch(() => undefined);
      }
      // Whatever an agent killed mid-way left in the port rules, they are made what the state says;
      // networks with nothing up lose their egress rules.
      const idle = this.store.networks()
        .filter((net) => !this.store.attachments().some((a) => a.environment === net.environment && a.phase !== 'down'))
        .map((net) => ({ net, keep: false }));
      // Networks in use whose egress rules are not exactly those this agent writes (an earlier
      // agent's, without the loopback DROP, with port 53 of every host address open, or with one
      // egress for every container of the bridge; one lost or added by hand; an address that left)
      // get them: until then their containers may reach 127.0.0.1, a resolver that forwards, or
      // what a neighbour's egress allows. The same rules are left as they are.
      const saved = await saveTables();
      const stale = this.store.networks()
        .filter((net) => inUse.has(net.environment) && hasStaleRules(this.egressBridge(net), this.prefix, saved.mangle))
        .map((net) => ({ net, keep: true }));
      await this.firewall([...idle, ...stale], saved);
      // The suspended containers' addresses are out of the rules now (their ports follow the state).
      await this.released(suspended);
      // Last: a container whose guard cannot be repaired is reported, not thrown (repairGuards()).
      const running = this.store.attachments().filter((a) => a.phase === 'up' && state(a.containerId) === 'running');
      await this.repairGuards(running);
      return torn;
    });
  }

  /** The attachment of a container, for `ct host ps` and reports. */
  attachment(containerId: string): AttachmentRow | undefined {
    return this.store.attachment(containerId);
  }
}
