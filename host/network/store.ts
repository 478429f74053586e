import Database from 'better-sqlite3';
import { CtError } from '../../src/core/errors.js';
import { CONTAINER_ID_RE } from '../runtime/state.js';
import { namesContainer } from '../runtime/scope.js';
import type { Egress, PublishedPort } from './types.js';

/**
 * Where a container's network stands. `setup` is written BEFORE `netavark setup` runs, so that an
 * agent killed in the middle leaves a row naming everything to tear down; `up` once it returned;
 * `down` after a teardown that keeps the address for a restart of the same container.
 */
export type AttachmentPhase = 'setup' | 'up' | 'down';

/**
 * An environment's network: its subnet slot. Its egress is not here: it is each container's
 * (AttachmentRow.egress), as apps of one environment may be granted different egress.
 */
export interface NetworkRow {
  environment: string;
  slot: number;
}

export interface AttachmentRow {
  containerId: string;
  environment: string;
  app: string;
  address: string;
  netns: string;
  /** The exact netavark options document given to `setup`: `teardown` replays it. */
  document: string;
  phase: AttachmentPhase;
  ports: PublishedPort[];
  /** What its policies grant this container (egress.ts writes its rules by its address). */
  egress: Egress;
  /**
   * The bridge port and MAC its anti-spoofing guard binds (anti-spoofing.ts), recorded when the
   * guard is first written, before anything runs in the namespace: recover() trusts these (the
   * port found by its ifindex), never what a running container says of its eth0. Absent in rows of
   * earlier agents (and before setup); recover() then records the port it finds from the host's
   * side, without a MAC (anti-spoofing.ts recoverPort()).
   */
  guard?: RecordedPort;
}

/** The host side of a container's veth, a port of its bridge, and its eth0's MAC (none when only found from the host). */
export interface RecordedPort {
  port: string;
  ifindex: number;
  mac?: string;
}

const PORT_NAME = /^[A-Za-z0-9_.-]{1,15}$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

const EGRESS: readonly Egress[] = ['none', 'environment', 'any'];

/**
 * The host's network allocations, in the host's SQLite state file (state.db, beside the
 * container table; its own connection, WAL): one subnet slot per environment, one address per
 * container, one row per published (address, port, protocol). Uniqueness is the database's, so
 * two apps asking for one port cannot both be granted it.
 */
export class NetworkStore {
  private readonly db: Database.Database;

  constructor(path: string) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS net_networks (
        environment TEXT PRIMARY KEY,
        slot INTEGER NOT NULL UNIQUE,
        egress TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS net_attachments (
        container_id TEXT PRIMARY KEY,
        environment TEXT NOT NULL REFERENCES net_networks(environment),
        app TEXT NOT NULL,
        address TEXT NOT NULL,
        netns TEXT NOT NULL,
        document TEXT NOT NULL,
        phase TEXT NOT NULL CHECK (phase IN ('setup','up','down')),
        UNIQUE (environment, address)
      );
      CREATE TABLE IF NOT EXISTS net_ports (
        protocol TEXT NOT NULL,
        host_port INTEGER NOT NULL,
        host_address TEXT NOT NULL,
        container_port INTEGER NOT NULL,
        container_id TEXT NOT NULL REFERENCES net_attachments(container_id) ON DELETE CASCADE,
        PRIMARY KEY (protocol, host_port, host_address)
      );
    `);
    this.db.pragma('foreign_keys = ON');
    this.addEgressColumn();
    this.addGuardColumns();
  }

  /** guard_port, guard_ifindex, guard_mac (AttachmentRow.guard): NULL in rows of earlier agents. */
  private addGuardColumns(): void {
    this.db.transaction(() => {
      const columns = (this.db.prepare('PRAGMA table_info(net_attachments)').all() as { name: string }[]).map((c) => c.name);
      if (columns.includes('guard_port')) return;
      this.db.exec('ALTER TABLE net_attachments ADD COLUMN guard_port TEXT; ALTER TABLE net_attachments ADD COLUMN guard_ifindex INTEGER; ALTER TABLE net_attachments ADD COLUMN guard_mac TEXT');
    }).immediate();
  }

  /** Records the port (and MAC) the container's guard binds. */
  setGuardPort(containerId: string, g: RecordedPort): void {
    this.db.prepare('UPDATE net_attachments SET guard_port = ?, guard_ifindex = ?, guard_mac = ? WHERE container_id = ?').run(g.port, g.ifindex, g.mac ?? null, containerId);
  }

  /**
   * State files of agents before per-container egress have no `egress` on attachments (their
   * network's egress, `net_networks.egress`, was that of the container attached last): each row
   * gets the narrowest its own setup document shows. A document with `dns_servers` was written for
   * `none` (netavark.ts forwardingServers); any other gets the network's recorded egress, which
   * the bridge's rules applied to it until now, so nothing is widened by the upgrade.
   */
  private addEgressColumn(): void {
    // Immediate: two stores opening one state file (an agent, a `ct host` command) add it once.
    this.db.transaction(() => {
      const columns = (this.db.prepare('PRAGMA table_info(net_attachments)').all() as { name: string }[]).map((c) => c.name);
      if (columns.includes('egress')) return;
      this.db.exec('ALTER TABLE net_attachments ADD COLUMN egress TEXT');
      const rows = this.db.prepare('SELECT a.container_id, a.document, n.egress AS network_egress FROM net_attachments a LEFT JOIN net_networks n ON n.environment = a.environment').all() as {
        container_id: string; document: string; network_egress: string | null;
      }[];
      const set = this.db.prepare('UPDATE net_attachments SET egress = ? WHERE container_id = ?');
      for (const r of rows) set.run(hasDnsServers(r.document) ? 'none' : asEgress(r.network_egress), r.container_id);
    }).immediate();
  }

  close(): void {
    this.db.close();
  }

  network(environment: string): NetworkRow | undefined {
    return this.db.prepare('SELECT environment, slot FROM net_networks WHERE environment = ?').get(environment) as NetworkRow | undefined;
  }

  networks(): NetworkRow[] {
    return this.db.prepare('SELECT environment, slot FROM net_networks ORDER BY slot').all() as NetworkRow[];
  }

  /**
   * The environment's network, created with the lowest free slot (a /24 each) when absent. It
   * carries no egress: the one an existing network had was overwritten by every attach, so the
   * container attached last set the egress of all its neighbours.
   */
  ensureNetwork(environment: string, slots: number): NetworkRow {
    return this.db.transaction(() => {
      const found = this.network(environment);
      if (found) return found;
      const used = new Set((this.db.prepare('SELECT slot FROM net_networks').all() as { slot: number }[]).map((r) => r.slot));
      let slot = 0;
      while (used.has(slot)) slot++;
      if (slot >= slots) throw new CtError('ADDRESS_POOL_EXHAUSTED', `no free subnet for environment ${environment}: all ${slots} are in use`, { environment, slots });
      // net_networks.egress is NOT NULL in every state file and read by no agent any more: `none`.
      this.db.prepare(`INSERT INTO net_networks (environment, slot, egress) VALUES (?, ?, 'none')`).run(environment, slot);
      return { environment, slot };
    })();
  }

  /** Frees the environment's subnet once no container is attached to it. */
  dropNetworkIfEmpty(environment: string): boolean {
    return this.db.transaction(() => {
      const n = this.db.prepare('SELECT COUNT(*) AS n FROM net_attachments WHERE environment = ?').get(environment) as { n: number };
      if (n.n > 0) return false;
      this.db.prepare('DELETE FROM net_networks WHERE environment = ?').run(environment);
      return true;
    })();
  }

  attachment(containerId: string): AttachmentRow | undefined {
    const r = this.db.prepare('SELECT * FROM net_attachments WHERE container_id = ?').get(containerId) as Record<string, unknown> | undefined;
    return r ? this.fromRow(r) : undefined;
  }

  attachments(): AttachmentRow[] {
    return (this.db.prepare('SELECT * FROM net_attachments ORDER BY container_id').all() as Record<string, unknown>[]).map((r) => this.fromRow(r));
  }

  /**
   * A row as the manager may use it: its network namespace is one a manager names for its
   * container (`/run/netns/<container id>-<scope>`, or `/run/netns/<container id>` in rows of
   * earlier agents), which netavark sets up and tears down and `ip netns` deletes. A row naming
   * another (a tampered state database: `/proc/1/ns/net`, the host's own) is refused
   * (HOST_STATE_INVALID), not followed.
   */
  private fromRow(r: Record<string, unknown>): AttachmentRow {
    const netnsOk = (id: string, netns: unknown): boolean => typeof netns === 'string' && netns.startsWith('/run/netns/') && namesContainer(netns.slice('/run/netns/'.length), id);
    if (typeof r.container_id !== 'string' || !CONTAINER_ID_RE.test(r.container_id) || !netnsOk(r.container_id, r.netns)) {
      throw new CtError('HOST_STATE_INVALID', `network attachment ${JSON.stringify(r.container_id).slice(0, 80)}: the state database records the network namespace ${JSON.stringify(r.netns).slice(0, 200)}, which no agent writes; nothing was done (remove its rows from state.db by hand: DELETE FROM net_ports WHERE container_id = '…'; DELETE FROM net_attachments WHERE container_id = '…')`, {});
    }
    // A recorded port no agent writes (a hand edit) counts as none: recover() finds it from the host again.
    const guard = typeof r.guard_port === 'string' && PORT_NAME.test(r.guard_port) && Number.isSafeInteger(r.guard_ifindex) && (r.guard_ifindex as number) > 0
      ? { port: r.guard_port, ifindex: r.guard_ifindex as number, ...(typeof r.guard_mac === 'string' && MAC.test(r.guard_mac) ? { mac: r.guard_mac } : {}) }
      : undefined;
    const ports = (this.db.prepare('SELECT protocol, host_port, host_address, container_port FROM net_ports WHERE container_id = ? ORDER BY host_port').all(r.container_id) as {
      protocol: PublishedPort['protocol']; host_port: number; host_address: string; container_port: number;
    }[]).map((p) => ({ protocol: p.protocol, host: p.host_port, address: p.host_address, container: p.container_port }));
    return {
      containerId: r.container_id, environment: r.environment as string, app: r.app as string, address: r.address as string, netns: r.netns as string,
      document: r.document as string, phase: r.phase as AttachmentPhase, ports, ...(guard ? { guard } : {}),
      // A value no agent writes (a hand edit) fails closed: the narrowest egress.
      egress: asEgress(r.egress),
    };
  }

  /**
   * Records a new attachment in phase `setup`, with the first free address of the subnet and its
   * published ports, in one transaction: a port another container holds (or a wildcard address
   * that overlaps it) is PORT_IN_USE, a full subnet ADDRESS_POOL_EXHAUSTED, and nothing is kept.
   */
  reserve(
    a: Omit<AttachmentRow, 'address' | 'phase' | 'document'>,
    candidates: readonly string[],
    document: (address: string) => string,
  ): AttachmentRow {
    return this.db.transaction(() => {
      this.checkPortsFree(a.containerId, a.ports);
      const taken = new Set((this.db.prepare('SELECT address FROM net_attachments WHERE environment = ?').all(a.environment) as { address: string }[]).map((r) => r.address));
      const address = candidates.find((c) => !taken.has(c));
      if (!address) {
        throw new CtError('ADDRESS_POOL_EXHAUSTED', `the network of environment ${a.environment} has no free address (${candidates.length} in its pool)`, {
          environment: a.environment, pool: candidates.length,
        });
      }
      const doc = document(address);
      this.db
        .prepare(`INSERT INTO net_attachments (container_id, environment, app, address, netns, document, phase, egress) VALUES (?, ?, ?, ?, ?, ?, 'setup', ?)`)
        .run(a.containerId, a.environment, a.app, address, a.netns, doc, a.egress);
      const ins = this.db.prepare('INSERT INTO net_ports (protocol, host_port, host_address, container_port, container_id) VALUES (?, ?, ?, ?, ?)');
      for (const p of a.ports) ins.run(p.protocol, p.host, p.address, p.container, a.containerId);
      return { ...a, address, document: doc, phase: 'setup' as const };
    })();
  }

  /** PORT_IN_USE when another container publishes one of these (a wildcard address overlaps every address). */
  checkPortsFree(containerId: string, ports: readonly PublishedPort[]): void {
    for (const p of ports) {
      const clash = this.db
        .prepare(`SELECT container_id, host_address FROM net_ports WHERE protocol = ? AND host_port = ? AND (host_address = ? OR host_address = '0.0.0.0' OR ? = '0.0.0.0') AND container_id != ?`)
        .get(p.protocol, p.host, p.address, p.address, containerId) as { container_id: string; host_address: string } | undefined;
      if (clash) {
        throw new CtError('PORT_IN_USE', `host port ${p.address}:${p.host}/${p.protocol} is already published by container ${clash.container_id}`, {
          port: p.host, address: p.address, protocol: p.protocol, holder: clash.container_id,
        });
      }
    }
  }

  /**
   * Moves the published ports of one container to another, in one transaction (a side-by-side
   * replace): all of them, or the given set (a deploy that also changes the ports). A port
   * another container holds is PORT_IN_USE and nothing moves.
   */
  movePorts(from: string, to: string, ports?: readonly PublishedPort[]): void {
    this.db.transaction(() => {
      if (!this.attachment(to)) throw new Error(`no attachment ${to} to move ports to`);
      if (!ports) {
        this.db.prepare('UPDATE net_ports SET container_id = ? WHERE container_id = ?').run(to, from);
        return;
      }
      this.db.prepare('DELETE FROM net_ports WHERE container_id IN (?, ?)').run(from, to);
      this.checkPortsFree(to, ports);
      const ins = this.db.prepare('INSERT INTO net_ports (protocol, host_port, host_address, container_port, container_id) VALUES (?, ?, ?, ?, ?)');
      for (const p of ports) ins.run(p.protocol, p.host, p.address, p.container, to);
    })();
  }

  setPhase(containerId: string, phase: AttachmentPhase): void {
    this.db.prepare('UPDATE net_attachments SET phase = ? WHERE container_id = ?').run(phase, containerId);
  }

  release(containerId: string): void {
    this.db.prepare('DELETE FROM net_attachments WHERE container_id = ?').run(containerId);
  }
}

/** An egress as stored; anything else (NULL, a hand edit) is `none`, the narrowest. */
function asEgress(v: unknown): Egress {
  return EGRESS.find((e) => e === v) ?? 'none';
}

/** Whether a stored netavark document names DNS servers for its container (only `none` gets them). */
function hasDnsServers(document: string): boolean {
  try {
    return Array.isArray((JSON.parse(document) as { dns_servers?: unknown }).dns_servers);
  } catch {
    // Unreadable: treated as the narrowest.
    return true;
  }
}
