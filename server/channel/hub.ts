import { randomBytes, type KeyObject } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { publicKeyFrom } from '../../src/trust/keyid.js';
import { MacChannel } from '../../src/protocol/session-keys.js';
import { CHANNEL_PROTOCOL, ServerHandshake } from '../../src/protocol/handshake.js';
import { CtError } from '../../src/core/errors.js';
import { CHANNEL_FEATURES, type Assignment, type ContainerAction, type ContainerState, type HostFacts, type HostMessage, type ServerMessage } from '../../src/protocol/messages.js';
import { LOG_CURSOR_RE, validLogLines, type LogLine } from '../../src/protocol/logs.js';
import { hostFactsProblem, knownHostFacts } from '../../src/protocol/host-facts.js';
import type { ServerContext } from '../context.js';
import { publish } from '../context.js';
import { AlertBudget, INVENTORY_BUDGET } from './alert-budget.js';
import { PendingHandshakes, type PendingHandshake } from './pending-handshakes.js';
import { ADMISSION_HEADER, AdmissionTickets } from './admission-ticket.js';
import { HOST_CHANNEL_DEFAULTS } from './limits.js';
import { keepAlive } from '../../src/protocol/keepalive.js';
import { StatusBudget } from './status-budget.js';
import { errorCode } from '../../src/protocol/error-code.js';
import { HOSTS_REMOVED_CHANNEL } from '../hosts/removal.js';
import { nonceFrom, REFUSAL_NONCE_HEADER, refusalFrame } from '../../src/protocol/refusal.js';
import { GENERATION_JOIN, GENERATION_OF, liftGeneration, raiseGenerations } from '../hosts/generations.js';
import { chunks, placeholders } from '../store/chunks.js';
import { txRetrying } from '../store/retry.js';
import type { Db } from '../store/db.js';
import { LATE, within } from './within.js';

type StatusMsg = Extract<HostMessage, { type: 'status' }>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** The states that answer an assignment (others, like `created`, are progress). */
const FINAL_STATES = new Set<ContainerState>(['running', 'refused', 'failed', 'stopped', 'suspended']);
const STATES = new Set(['created', 'running', 'paused', 'stopped', 'removed', 'refused', 'failed', 'suspended']);
const HEALTH = new Set(['none', 'starting', 'healthy', 'unhealthy']);

const boundedText = (x: unknown) => x === null || (typeof x === 'string' && x.length <= 256);

/** One container of an inventory (functions of the module: they run for every host's status; within.ts says why). */
function validContainer(c: Record<string, unknown> | null): boolean {
  return Boolean(c && typeof c === 'object' && typeof c.id === 'string' && c.id.length <= 128 && boundedText(c.app) && boundedText(c.imageDigest) && STATES.has(c.state as string) && (c.exitCode === undefined || c.exitCode === null || Number.isInteger(c.exitCode))
    && (c.exitReason === undefined || c.exitReason === null || (typeof c.exitReason === 'string' && c.exitReason.length <= 64))
    && (c.health === undefined || HEALTH.has(c.health as string)) && (c.restarts === undefined || (Number.isInteger(c.restarts) && (c.restarts as number) >= 0))
    && (c.lastExitCode === undefined || c.lastExitCode === null || Number.isInteger(c.lastExitCode)) && (c.suspended === undefined || typeof c.suspended === 'boolean'));
}

/** The inventory feeds drift for every user: it must have the shape the protocol says. */
function validInventory(v: unknown): boolean {
  return Array.isArray(v) && v.length <= 1000 && v.every(validContainer);
}

/** Bounds of what a host's status says (written to the deployment, sent to every event subscriber). */
const MAX_STATUS_MESSAGE = 1000;

/**
 * A host's status as the server takes it: the protocol's fields only, typed and bounded, or
 * undefined. The host is trusted for what it reports about its own deployments, not to name
 * another host (a `hostId` it added was spread over the authenticated one in `host.status`), nor
 * to write a megabyte into a deployment's message or an arbitrary reason.
 */
function statusFrom(m: Record<string, unknown>): StatusMsg | undefined {
  const { deploymentId, generation, state, exitCode, code, message } = m;
  if (typeof deploymentId !== 'string' || deploymentId.length > 128) return undefined;
  if (!Number.isSafeInteger(generation) || !STATES.has(state as string)) return undefined;
  return {
    type: 'status', deploymentId, generation: generation as number, state: state as ContainerState,
    ...(exitCode === null || Number.isSafeInteger(exitCode) ? { exitCode: exitCode as number | null } : {}),
    ...(typeof code === 'string' ? { code: errorCode(code, 'HOST_FAILED') } : {}),
    ...(typeof message === 'string' ? { message: message.slice(0, MAX_STATUS_MESSAGE) } : {}),
  };
}

interface Connection {
  hostId: string;
  facts: HostFacts;
  send(msg: ServerMessage): void;
  /** Sends a message a fan-out shares, given as bytes and the per-channel rest of its text (MacChannel.sealShared). */
  sendShared(shared: Buffer, tail: string): void;
  close(): void;
  /** Ends the channel at once (the server stops): a close waits up to 30 s for a silent peer. */
  end(): void;
  /** Closes with a code the host is told (its removal), ended at once if it does not answer the close. */
  kick(code: number, reason: string): void;
  /** Set when the host was removed: what it still sends is not read. */
  removed?: boolean;
  /**
   * True once its welcome was sent, false if it ended before: registered before (a removal or a
   * newer channel must find it), it is assigned to only after, as a host refuses any message
   * before its welcome (host/agent/agent.ts).
   */
  welcomed: Promise<boolean>;
}

/** How long a removed host's channel may take to answer the close before it is ended. */
const KICK_GRACE_MS = 1000;

interface Waiter {
  deploymentId: string;
  hostId: string;
  /** The generation of its assignment: a final status of it answers (data, not a closure per assignment: within.ts says why). */
  generation: number;
  resolve: (s: StatusMsg | { type: 'timeout' } | { type: 'offline' }) => void;
  /** Its timeout, cleared when it is answered (else every answered assignment of a fleet kept its waiter for the whole timeout). */
  timer?: NodeJS.Timeout;
}

/**
 * The server end of the host channel: a WebSocket per host, every message signed (envelope.ts),
 * the host authenticated by the key it enrolled with. Assignments carry a generation taken from
 * the database so that it only ever increases, across restarts and replicas of this version; one a
 * host accepted elsewhere (a restored database, a replica of the previous version) is lifted to at
 * its hello, before the channel can be assigned to (docs/host-protocol.md).
 */

/** A live channel's `last_seen` is written at most this often (readers judge freshness over 90 s). */
const LAST_SEEN_EVERY_MS = 10_000;

/** An assignment's host has no row (removed meanwhile): assign() answers `offline`. */
class HostNotEnrolled extends Error {
  constructor(hostId: string) {
    super(`host ${hostId} is not enrolled`);
  }
}

/**
 * How long a generations transaction waits for a row lock on PostgreSQL (lock_timeout): a row held
 * by another replica's transaction (a wedged connection, a long transaction) fails the batch
 * (55P03) instead of stalling it, and every batch queued behind it on this replica, for good.
 */
export const GENERATION_LOCK_TIMEOUT_MS = 5_000;
/** How long a generations transaction may take in all (retries, a connection that never answers): past it the next batch goes on. */
export const GENERATION_WRITE_BOUND_MS = 15_000;
/**
 * Bounds the rest of transaction `t` on PostgreSQL (nothing elsewhere: SQLite has one writer and
 * no row locks): a generation row held by another transaction fails it after
 * GENERATION_LOCK_TIMEOUT_MS (55P03), a statement past GENERATION_WRITE_BOUND_MS is cancelled
 * (57014), its locks given back, instead of holding a pooled connection for as long as it hangs.
 */
async function boundGenerationWrites(t: Db): Promise<void> {
  if (t.dialect !== 'postgres') return;
  await t.query('SELECT set_config(\'lock_timeout\', ?, true), set_config(\'statement_timeout\', ?, true)', [String(GENERATION_LOCK_TIMEOUT_MS), String(GENERATION_WRITE_BOUND_MS)]);
}
/** An assignment waiting for its generation (flushAssign). */
interface PendingAssign { hostId: string; bundleDigest: string; resolve: (generation: number) => void; reject: (e: Error) => void }

/** A batch's generations not written in time: its assignments answer GENERATION_BUSY, and the deploy is tried again. */
class GenerationBusy extends Error {}

/**
 * Gives each assignment of `batch` its generation from `raised` (each host's last of the k new ones
 * of `times`, its assignments taking them in order), or fails it with `raised`'s error; a host
 * absent from `raised` was removed meanwhile.
 */
function settle(batch: readonly PendingAssign[], times: ReadonlyMap<string, number>, raised: Map<string, number> | Error): void {
  const given = new Map<string, number>();
  for (const b of batch) {
    if (raised instanceof Error) {
      b.reject(raised);
      continue;
    }
    const top = raised.get(b.hostId);
    if (top === undefined) {
      b.reject(new HostNotEnrolled(b.hostId));
      continue;
    }
    const n = (given.get(b.hostId) ?? 0) + 1;
    given.set(b.hostId, n);
    b.resolve(top - times.get(b.hostId)! + n);
  }
}

/**
 * A generations transaction's failure as its assignments answer it: PostgreSQL's lock_not_available
 * (lock_timeout) and query_canceled (statement_timeout) as GENERATION_BUSY, each saying what took
 * too long; anything else as it is.
 */
function generationError(e: unknown): Error {
  const code = (e as { code?: unknown }).code;
  if (code === '55P03') return new GenerationBusy(`a host's generation was locked for over ${GENERATION_LOCK_TIMEOUT_MS} ms by another transaction`);
  if (code === '57014') return new GenerationBusy(`the hosts' generations transaction ran for over ${GENERATION_WRITE_BOUND_MS} ms`);
  return e instanceof Error ? e : new Error(String(e));
}

export class HostHub {
  private readonly conns = new Map<string, Connection>();
  // Refused counts are logged once a host's minute has passed (a timer), and at close: a burst
  // shorter than a minute was summed up only by a later refusal, and a lone one never.
  private readonly alertBudget = new AlertBudget(Date.now, undefined, (hostId, dropped) =>
    this.ctx.log.warn({ hostId, dropped }, 'host alerts not written: over the host\'s budget or too large'));
  private readonly inventoryBudget = new AlertBudget(Date.now, INVENTORY_BUDGET, (hostId, dropped) =>
    this.ctx.log.warn({ hostId, dropped }, 'host inventories not written: over the host\'s budget'));
  /** Connections not authenticated yet: bounded in number, per address and in time (pending-handshakes.ts). */
  private readonly pending: PendingHandshakes;
  /** Tickets given to welcomed hosts, for a place of their own on their next upgrade (admission-ticket.ts). */
  private readonly tickets: AdmissionTickets;
  /** What each host's statuses publish to event subscribers, within its budget (status-budget.ts). */
  private readonly statuses: StatusBudget<StatusMsg>;
  /** Waiters for a host's final status, by `hostId deploymentId` (a fan-out's statuses find theirs without a scan). */
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly logWaiters = new Map<string, (m: Extract<HostMessage, { type: 'logs' }>) => void>();
  private readonly actionWaiters = new Map<string, (m: Extract<HostMessage, { type: 'action' }>) => void>();
  private wss?: WebSocketServer;
  private closed = false;
  /** Stops listening for host removals made on any replica (attach). */
  private unlisten?: () => Promise<void>;
  /** When each host's `last_seen` was last written (it is written at most every LAST_SEEN_EVERY_MS). */
  private readonly seenWritten = new Map<string, number>();
  /** The inventory (JSON) last written for each host connected here; forgotten when its channel changes. */
  private readonly inventoryWritten = new Map<string, string>();
  /**
   * The latest inventory (JSON) of each host refused over its budget, and the timer that writes it
   * once the host has a token again (~1 s): the host sends its inventory again only every 30 s, so
   * without it the state after a burst (a deploy, an action) stayed unwritten that long, and drift,
   * the dashboard, actions and promotion health read the stale one.
   */
  private readonly inventoryPending = new Map<string, { text: string; timer: NodeJS.Timeout }>();
  /** Serialised assignments, by the object a deploy sends to all its hosts (assignmentBytes). */
  private readonly assignBytes = new WeakMap<object, Buffer>();
  /** Host rows waiting to be written, in one transaction per turn (writeHostRow). */
  private pendingRows = new Map<string, { containers?: string; waiting: { resolve: () => void; reject: (e: Error) => void }[] }>();
  /** Assignments waiting for their generation: written together, in one transaction (a fan-out to a fleet). */
  private pendingAssign: PendingAssign[] = [];
  /** The generations transaction being written, if any (see scheduleFlush); never rejects. */
  private assignChain: Promise<void> = Promise.resolve();

  constructor(private readonly ctx: ServerContext, private readonly serverKey: KeyObject) {
    this.pending = new PendingHandshakes(ctx.config.hostChannel);
    this.tickets = new AdmissionTickets(serverKey);
    this.statuses = new StatusBudget((hostId, status) => publish(this.ctx, 'host.status', { ...status, hostId }), ctx.config.hostChannel, Date.now, (s) => FINAL_STATES.has(s.state));
  }

  connected(hostId: string): HostFacts | undefined {
    return this.conns.get(hostId)?.facts;
  }

  attach(server: Server): void {
    // A host removed through any replica: the one holding its channel closes it (sweepRemoved).
    void this.ctx.db.listen(HOSTS_REMOVED_CHANNEL, () => void this.sweepRemoved()).then((stop) => {
      if (this.closed) void stop();
      else this.unlisten = stop;
    }, (e: unknown) => this.ctx.log.warn({ err: (e as Error).message }, 'not listening for host removals'));
    // The channel's version is its WebSocket subprotocol; a peer without it is told so (accept()).
    this.wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024, handleProtocols: (offered) => (offered.has(CHANNEL_PROTOCOL) ? CHANNEL_PROTOCOL : false) });
    server.on('upgrade', (req: IncomingMessage, socket, head) => {
      // Runs outside express: nothing a client sends here may throw out of this handler.
      try {
        const url = new URL(req.url ?? '/', 'http://localhost');
        const hostId = url.searchParams.get('host') ?? '';
        if (url.pathname !== '/api/v1/hosts/channel' || !UUID.test(hostId)) return socket.destroy();
        // Counted from here: a client that named a host id, any, has not proved it is that host. One
        // with that host's ticket (an HMAC, checked before anything is allocated) has been welcomed
        // as it before, and competes only with others holding that ticket.
        const ticketFor = this.tickets.valid(req.headers[ADMISSION_HEADER], hostId) ? hostId : undefined;
        const pending = this.pending.admit(socket, req.socket.remoteAddress, ticketFor);
        // Refused (no room: every place is held by a handshake too young to drop): destroyed.
        if (!pending) return;
        this.wss!.handleUpgrade(req, socket, head, (ws) => {
          // ws reads the socket from now on (its listener is attached, `head` put back): what
          // came with the upgrade request counts toward what it may send before its hello.
          pending.watch(head.length);
          this.accept(ws, req.socket, hostId, pending, nonceFrom(req.headers[REFUSAL_NONCE_HEADER])).catch((e) => {
            this.ctx.log.warn({ err: (e as Error).message }, 'host channel set-up failed');
            ws.close(1011, 'internal error');
          });
        });
      } catch {
        socket.destroy();
      }
    });
  }

  /**
   * `raw`: the TCP socket under `ws` (the upgrade's), whose byte counters the keepalive reads;
   * `nonce`: the host's for a signed refusal (src/protocol/refusal.ts), when it sent one.
   */
  private async accept(ws: WebSocket, raw: Socket, hostId: string, pending: PendingHandshake, nonce: string | undefined): Promise<void> {
    ws.on('error', () => undefined);
    // Host and server ship together: an older (or newer) host is told which version this is.
    if (ws.protocol !== CHANNEL_PROTOCOL) {
      ws.close(4426, 'CHANNEL_VERSION_UNSUPPORTED');
      return pending.refuse();
    }
    const [row] = await this.ctx.db.query<{ public_key: string; generation: number }>(`SELECT h.public_key, ${GENERATION_OF} AS generation FROM hosts h ${GENERATION_JOIN} WHERE h.id = ?`, [hostId]);
    if (!row) {
      // A removed host is told so, signed, when it asked with a nonce: its agent then stops for
      // good instead of retrying forever (the close code alone is not authenticated: see
      // refusal.ts). An unknown id gets its signed HOST_UNKNOWN likewise (its agent waits before
      // believing it: host/agent/refusals.ts). A flood of unknown ids costs one indexed read and
      // one signature each, as a known id's challenge does, within the same pending bounds.
      const [gone] = await this.ctx.db.query<{ one: number }>('SELECT 1 AS one FROM hosts_removed WHERE id = ?', [hostId]);
      if (nonce && ws.readyState === ws.OPEN) ws.send(refusalFrame(this.serverKey, hostId, nonce, gone ? 'HOST_REMOVED' : 'HOST_UNKNOWN'), { binary: false });
      // Its place is given back at once: it would have held it until its deadline, waiting for
      // an answer to the close that a client flooding unknown ids never sends.
      if (gone) ws.close(4403, 'HOST_REMOVED');
      else ws.close(4401, 'unknown host');
      return pending.refuse();
    }
    // Handshake signed with the long-term keys over its whole transcript; everything after it
    // MACed with the session keys derived from that transcript (src/protocol/handshake.ts).
    const handshake = new ServerHandshake(hostId, this.serverKey, publicKeyFrom(row.public_key));
    let mac: MacChannel<HostMessage, ServerMessage> | undefined;
    const send = (msg: ServerMessage) => ws.readyState === ws.OPEN && mac && ws.send(mac.seal(msg));
    const sendShared = (shared: Buffer, tail: string) => ws.readyState === ws.OPEN && mac && ws.send(mac.sealShared(shared, tail), { binary: false });
    let conn: Connection | undefined;
    let welcome!: (sent: boolean) => void;
    const welcomed = new Promise<boolean>((r) => (welcome = r));
    ws.send(handshake.challenge(), { binary: false });
    // One handler for the channel's life, not an async closure made per message (within.ts says why).
    const onFrame = async (data: RawData, isBinary: boolean): Promise<void> => {
      // ws hands a text message over as one Buffer (a fragmented one as several): read in place.
      const frame = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      if (!mac) {
        let hello;
        try {
          if (isBinary) throw new CtError('CHANNEL_HANDSHAKE_FAILED', 'handshake message is not a text frame');
          const done = handshake.hello(frame);
          // Policies read these for every deploy to the host's environment (host-facts.ts).
          const factsProblem = hostFactsProblem(done.hello.facts);
          if (factsProblem) throw new CtError('CHANNEL_HANDSHAKE_FAILED', `hello facts ${factsProblem}`);
          // Only the fields the protocol names are kept (stored, and returned by GET /api/v1/hosts).
          hello = { ...done.hello, facts: knownHostFacts(done.hello.facts) };
          mac = new MacChannel(done.keys);
        } catch (e) {
          const code = e instanceof CtError && e.code === 'CHANNEL_VERSION_UNSUPPORTED' ? e.code : 'CHANNEL_HANDSHAKE_FAILED';
          this.ctx.log.warn({ hostId, code, err: (e as Error).message }, 'host channel handshake refused');
          ws.close(code === 'CHANNEL_VERSION_UNSUPPORTED' ? 4426 : 4401, code);
          return pending.refuse();
        }
        // Dropped meanwhile (its deadline, or room made for newer connections): not a channel,
        // and it must not replace the host's current one.
        if (!pending.authenticated()) return;
        // A host that accepted a higher generation than this database knows (a restore, a
        // failover, a replica of the previous version) lifts it, committed before the channel is
        // registered below: an assignment can only be made through it after, so its generation
        // is above what the hello reported (made before, it was refused as stale). Not written
        // (the database failing): closed, for the host to connect again, rather than left
        // authenticated and never welcomed.
        // Only when there is something to lift (generations only rise, so the value read above
        // still bounds it): an ordinary reconnect takes no transaction and no row lock. Bounded
        // like the raises: a row held elsewhere (another replica's wedged transaction) or a
        // database connection that stops answering closes this hello, for the host to connect
        // again, instead of leaving it authenticated and never welcomed, a pooled connection held.
        if (hello.generation > Number(row.generation)) {
          const lifted = await within(this.ctx.db.tx(async (t) => {
            await boundGenerationWrites(t);
            await liftGeneration(t, hostId, hello.generation);
          }), GENERATION_WRITE_BOUND_MS).catch((e: unknown) => {
            ws.close(1011, 'internal error');
            throw e;
          });
          if (lifted === LATE) {
            this.ctx.log.warn({ hostId }, `host channel closed: its generation was not lifted within ${GENERATION_WRITE_BOUND_MS} ms`);
            return void ws.close(1011, 'internal error');
          }
        }
        // Closed meanwhile: its 'close' has run (nothing registered), so nothing to register.
        if (ws.readyState !== ws.OPEN) return;
        conn = {
          hostId, facts: hello.facts, send, sendShared, close: () => ws.close(), end: () => ws.terminate(),
          kick: (code, reason) => {
            // Not assignable from now: an assign() waiting for the welcome answers at once.
            welcome(false);
            ws.close(code, reason);
            setTimeout(() => ws.terminate(), KICK_GRACE_MS).unref();
          },
          welcomed,
        };
        // A host whose network dropped without a FIN answers no ping: terminated, its 'close'
        // then marks it disconnected (without this it stayed connected here for good).
        keepAlive(ws, raw, this.ctx.config.hostChannel?.pingMs ?? HOST_CHANNEL_DEFAULTS.pingMs, () => this.ctx.log.warn({ hostId }, 'host channel ended: the host answered no ping'));
        this.conns.get(hostId)?.close();
        this.conns.set(hostId, conn);
        // Another replica may have written this host's row while it was away; what the previous
        // channel left pending is superseded by what this one sends.
        this.inventoryWritten.delete(hostId);
        this.dropPendingInventory(hostId);
        // `replica`: other replicas hand this host's deploys to this one (several replicas on PostgreSQL).
        // Bounded as the lift above: a database that stops answering closes the channel rather
        // than keeping it registered and never welcomed (a late write of facts is harmless).
        const seen = await within(this.ctx.db.run('UPDATE hosts SET facts = ?, last_seen = ?, replica = ? WHERE id = ?', [
          JSON.stringify(hello.facts), Date.now(), this.ctx.queue.workerId, hostId,
        ]), GENERATION_WRITE_BOUND_MS).catch((e: unknown) => {
          welcome(false);
          ws.close(1011, 'internal error');
          throw e;
        });
        if (seen === LATE) {
          welcome(false);
          this.ctx.log.warn({ hostId }, `host channel closed: its hello was not recorded within ${GENERATION_WRITE_BOUND_MS} ms`);
          return void ws.close(1011, 'internal error');
        }
        // Removed while it was shaking hands (its row read before the removal): no channel. A
        // removal committed after this write finds the channel through sweepRemoved.
        if (seen.changes !== 1) return this.removed(hostId);
        this.seenWritten.set(hostId, Date.now());
        // The first MAC frame: the host's proof that both ends derived keys from one transcript.
        send({ type: 'welcome', hostId, generation: Number(row.generation), features: [...CHANNEL_FEATURES], admission: this.tickets.issue(hostId) });
        // Assignable from now on (assign() waited): after the welcome, as the host requires.
        welcome(ws.readyState === ws.OPEN);
        publish(this.ctx, 'host.connected', { hostId });
        return;
      }
      // A removed host's frames still in flight are not read (no status, alert or inventory written).
      if (conn?.removed) return;
      let msg: HostMessage;
      try {
        if (isBinary) throw new CtError('MALFORMED_BUNDLE', 'channel message is not a text frame');
        msg = mac.open(frame);
        if (!msg || typeof msg !== 'object' || typeof msg.type !== 'string') throw new CtError('MALFORMED_BUNDLE', 'channel message has no type');
      } catch (e) {
        const code = e instanceof CtError ? e.code : 'MALFORMED_BUNDLE';
        this.ctx.log.warn({ hostId, code, err: (e as Error).message }, 'host channel message rejected');
        return ws.close(4401, code);
      }
      await this.onMessage(hostId, msg);
    };
    const failed = (e: unknown) => this.ctx.log.error({ err: e }, 'host channel handler failed');
    ws.on('message', (data, isBinary) => void onFrame(data, isBinary).catch(failed));
    ws.on('close', () => {
      // Never welcomed (removed, replaced or failed during its hello): never assignable.
      welcome(false);
      if (conn && this.conns.get(hostId) === conn) {
        this.conns.delete(hostId);
        this.inventoryWritten.delete(hostId);
        // The host's last inventory, if it was still waiting for its budget, is written with the
        // release of the row, and only while the row is still this replica's (a host that has
        // already reconnected to another one has had a newer inventory written there).
        const pending = this.inventoryPending.get(hostId)?.text;
        this.dropPendingInventory(hostId);
        const release = pending === undefined
          ? this.ctx.db.run('UPDATE hosts SET replica = NULL WHERE id = ? AND replica = ?', [hostId, this.ctx.queue.workerId])
          : this.ctx.db.run('UPDATE hosts SET containers = ?, replica = NULL WHERE id = ? AND replica = ?', [pending, hostId, this.ctx.queue.workerId]);
        void release.catch(() => undefined);
        publish(this.ctx, 'host.disconnected', { hostId });
      }
    });
  }

  private async onMessage(hostId: string, msg: HostMessage): Promise<void> {
    if (msg.type === 'status') {
      // A status may carry the inventory that follows it (`status.containers`, one frame where
      // older hosts send two): handled as the status, then as that inventory.
      const { containers } = msg;
      const status = statusFrom(msg);
      if (!status) {
        this.ctx.log.warn({ hostId }, 'malformed status ignored');
        return containers === undefined ? this.touch(hostId) : this.inventory(hostId, containers);
      }
      if (containers === undefined) await this.touch(hostId);
      this.statuses.offer(hostId, status);
      const over = this.statuses.warning(hostId);
      if (over !== undefined) this.ctx.log.warn({ hostId, ...over }, 'host statuses held: over the host\'s budget');
      const key = `${hostId} ${status.deploymentId}`;
      const set = this.waiters.get(key);
      for (const w of set ?? []) {
        if (w.generation === status.generation && FINAL_STATES.has(status.state)) {
          this.dropWaiter(w);
          w.resolve(status);
        }
      }
      if (containers !== undefined) await this.inventory(hostId, containers);
      return;
    }
    if (msg.type !== 'containers') await this.touch(hostId);
    if (msg.type === 'logs') {
      this.logWaiters.get(`${hostId}/${msg.requestId}`)?.(msg);
    } else if (msg.type === 'action') {
      this.actionWaiters.get(`${hostId}/${msg.requestId}`)?.(msg);
    } else if (msg.type === 'containers') {
      await this.inventory(hostId, msg.containers);
    } else if (msg.type === 'event') {
      // An enrolled host is trusted for what it says, not for how much: alerts beyond its budget
      // (and oversized ones) are not written to the audit log, and the server says so once a minute.
      const record = JSON.stringify(msg);
      if (!this.alertBudget.admit(hostId, Buffer.byteLength(record))) return;
      publish(this.ctx, 'host.alert', { ...msg, hostId });
      await this.ctx.db.run('INSERT INTO audit (id, time, kind, subject, record) VALUES (?, ?, ?, ?, ?)', [
        randomBytes(12).toString('hex'), Date.now(), 'host.alert', hostId, record,
      ]);
    }
  }

  /** A host's container inventory: checked, and written when it changed. */
  private async inventory(hostId: string, containers: unknown): Promise<void> {
    if (!validInventory(containers)) {
      this.ctx.log.warn({ hostId }, 'malformed container inventory ignored');
      return this.touch(hostId);
    }
    const text = JSON.stringify(containers);
    // The same inventory again (every 30 s, and after a redeploy of what already runs) changes
    // nothing but the channel's freshness.
    if (this.inventoryWritten.get(hostId) === text) {
      // The latest is what is written: one still pending is older.
      this.dropPendingInventory(hostId);
      return this.touch(hostId);
    }
    // Over the host's allowance: not written now, but kept as the host's latest and written when
    // its next token is due (one timer per host, its inventory replaced by each newer one).
    if (!this.inventoryBudget.admit(hostId, text.length)) {
      const pending = this.inventoryPending.get(hostId);
      if (pending) pending.text = text;
      else this.armPendingInventory(hostId, text);
      return this.touch(hostId);
    }
    this.dropPendingInventory(hostId);
    await this.writeInventory(hostId, text);
  }

  private async writeInventory(hostId: string, text: string): Promise<void> {
    this.inventoryWritten.set(hostId, text);
    this.seenWritten.set(hostId, Date.now());
    await this.writeHostRow(hostId, text);
  }

  private armPendingInventory(hostId: string, text: string): void {
    const timer = setTimeout(() => {
      const p = this.inventoryPending.get(hostId);
      if (!p || p.timer !== timer) return;
      this.inventoryPending.delete(hostId);
      if (!this.conns.has(hostId) || this.inventoryWritten.get(hostId) === p.text) return;
      if (!this.inventoryBudget.admit(hostId, p.text.length)) return this.armPendingInventory(hostId, p.text);
      this.writeInventory(hostId, p.text).catch((e) => this.ctx.log.warn({ hostId, err: (e as Error).message }, 'host inventory not written'));
    }, Math.max(1, this.inventoryBudget.nextIn(hostId)));
    timer.unref();
    this.inventoryPending.set(hostId, { text, timer });
  }

  private dropPendingInventory(hostId: string): void {
    const p = this.inventoryPending.get(hostId);
    if (!p) return;
    clearTimeout(p.timer);
    this.inventoryPending.delete(hostId);
  }

  /**
   * Asks a connected host for the tail of a container's log, or with `since` for the lines after
   * that cursor. Hosts that know lines answer with them (stream, time) and the next cursor.
   */
  async requestLogs(hostId: string, container: string, maxBytes: number, timeoutMs = 10_000, since?: string): Promise<{ text: string; lines?: LogLine[]; cursor?: string } | { code: string }> {
    const deadline = Date.now() + timeoutMs;
    const conn = this.conns.get(hostId);
    if (!conn) return { code: 'HOST_UNAVAILABLE' };
    // Not before its welcome: the host refuses anything sent earlier, and drops the channel.
    if ((await within(conn.welcomed, timeoutMs)) !== true) return { code: 'HOST_UNAVAILABLE' };
    const requestId = randomBytes(8).toString('hex');
    const key = `${hostId}/${requestId}`;
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.logWaiters.delete(key);
        resolve({ code: 'HOST_UNAVAILABLE' });
      }, Math.max(0, deadline - Date.now()));
      t.unref();
      this.logWaiters.set(key, (m) => {
        clearTimeout(t);
        this.logWaiters.delete(key);
        if (typeof m.text !== 'string') return resolve({ code: String(m.code ?? 'IO_ERROR').slice(0, 64) });
        const lines = validLogLines(m.lines) ? m.lines.map((l) => ({ stream: l.stream, time: l.time, text: l.text.slice(0, 64 * 1024) })) : undefined;
        const cursor = typeof m.cursor === 'string' && LOG_CURSOR_RE.test(m.cursor) ? m.cursor : undefined;
        resolve({ text: m.text.slice(-maxBytes), ...(lines ? { lines } : {}), ...(cursor ? { cursor } : {}) });
      });
      conn.send({ type: 'logs', requestId, container, maxBytes, ...(since ? { since } : {}) });
    });
  }

  /**
   * Asks a connected host to act on one of its containers; resolves with the container's state
   * after the action, or the host's refusal code. A stop waits for the grace period: the timeout
   * leaves room for it.
   */
  async requestAction(hostId: string, container: string, req: { action: ContainerAction; signal?: string; graceSeconds?: number }, timeoutMs = 30_000): Promise<{ state: ContainerState } | { code: string; message?: string }> {
    const deadline = Date.now() + timeoutMs + (req.graceSeconds ?? 10) * 1000;
    const conn = this.conns.get(hostId);
    if (!conn) return { code: 'HOST_UNAVAILABLE', message: 'the host is not connected' };
    // Not before its welcome: the host refuses anything sent earlier, and drops the channel.
    const welcomed = await within(conn.welcomed, timeoutMs);
    if (welcomed === LATE) return { code: 'HOST_UNAVAILABLE', message: 'the host was not welcomed in time' };
    if (!welcomed) return { code: 'HOST_UNAVAILABLE', message: 'the host is not connected' };
    const requestId = randomBytes(8).toString('hex');
    const key = `${hostId}/${requestId}`;
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.actionWaiters.delete(key);
        resolve({ code: 'HOST_UNAVAILABLE', message: 'the host did not answer in time' });
      }, Math.max(0, deadline - Date.now()));
      t.unref();
      this.actionWaiters.set(key, (m) => {
        clearTimeout(t);
        this.actionWaiters.delete(key);
        resolve(m.state && STATES.has(m.state) ? { state: m.state } : { code: String(m.code ?? 'RUNTIME_FAILED').slice(0, 64), message: typeof m.message === 'string' ? m.message.slice(0, 500) : undefined });
      });
      conn.send({ type: 'action', requestId, container, ...req });
    });
  }

  /**
   * `last_seen` says a host's channel is alive (replica freshness: 90 s; promotion health): it is
   * written at most every few seconds, not at every message (a fleet answering a deploy sent one
   * write per host and message).
   */
  private async touch(hostId: string): Promise<void> {
    const now = Date.now();
    if (now - (this.seenWritten.get(hostId) ?? 0) < LAST_SEEN_EVERY_MS) return;
    this.seenWritten.set(hostId, now);
    await this.writeHostRow(hostId);
  }

  /**
   * A host row's `last_seen`, with its inventory when that changed: the writes of one turn (a
   * fleet answering a deploy) are applied together in one transaction, a host's latest inventory
   * winning. Resolves once written.
   */
  private writeHostRow(hostId: string, containers?: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const row = this.pendingRows.get(hostId);
      if (row) {
        row.containers = containers ?? row.containers;
        row.waiting.push({ resolve, reject });
      } else this.pendingRows.set(hostId, { containers, waiting: [{ resolve, reject }] });
      if (this.pendingRows.size === 1 && !row) setImmediate(() => void this.flushHostRows());
    });
  }

  private async flushHostRows(): Promise<void> {
    const batch = this.pendingRows;
    this.pendingRows = new Map();
    const now = Date.now();
    try {
      const gone = await this.ctx.db.tx(async (t) => {
        const missing: string[] = [];
        for (const [hostId, r] of batch) {
          const out = r.containers === undefined
            ? await t.run('UPDATE hosts SET last_seen = ? WHERE id = ?', [now, hostId])
            : await t.run('UPDATE hosts SET containers = ?, last_seen = ? WHERE id = ?', [r.containers, now, hostId]);
          if (out.changes === 0) missing.push(hostId);
        }
        return missing;
      });
      // Its row is gone: the host was removed, and this replica missed the notice (sweepRemoved).
      // Without this its channel stayed open for good, its frames still read (alerts audited).
      for (const hostId of gone) if (!this.closed) this.removed(hostId);
      for (const r of batch.values()) for (const w of r.waiting) w.resolve();
    } catch (e) {
      // Not written: the next inventory of these hosts is written again, not taken as known.
      for (const [hostId, r] of batch) {
        if (r.containers !== undefined && this.inventoryWritten.get(hostId) === r.containers) this.inventoryWritten.delete(hostId);
        for (const w of r.waiting) w.reject(e as Error);
      }
    }
  }

  /** The next generation of a host, with the bundle recorded as assigned to it; batched (see flushAssign). */
  private nextGeneration(hostId: string, bundleDigest: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.pendingAssign.push({ hostId, bundleDigest, resolve, reject });
      if (this.pendingAssign.length === 1) setImmediate(() => void this.scheduleFlush());
    });
  }

  /**
   * One generations transaction at a time on this replica: the next batch accumulates while one is
   * written, and is flushed after it (two at once raising the same hosts only waited on, or on
   * PostgreSQL deadlocked with, each other). On PostgreSQL one past GENERATION_WRITE_BOUND_MS is
   * no longer waited for: the next goes on, and the server cancels the abandoned one's statement
   * (statement_timeout), its row locks waited for meanwhile within the lock timeout like any
   * other's. A batch with held hosts waits for them in a second transaction before the next batch
   * (their generations stay in batch order): the chain may wait up to twice the bound.
   */
  private scheduleFlush(): void {
    this.assignChain = this.assignChain.then(() => this.flushAssign());
  }

  /**
   * One transaction for every assignment made in the same turn (a deploy's fan-out to its hosts),
   * a few statements for all of them: a host assigned k times in the turn (several apps) gets its
   * generation raised by k, each assignment one of the k, in order. On PostgreSQL a host whose row
   * another transaction holds is left out of it (SKIP LOCKED) and waited for in a second one, within
   * the lock timeout: only that host's assignments can answer GENERATION_BUSY, not the batch's others.
   */
  private async flushAssign(): Promise<void> {
    const batch = this.pendingAssign;
    this.pendingAssign = [];
    if (batch.length === 0) return;
    const times = new Map<string, number>();
    for (const b of batch) times.set(b.hostId, (times.get(b.hostId) ?? 0) + 1);
    const pg = this.ctx.db.dialect === 'postgres';
    const busy: string[] = [];
    let raised: Map<string, number> | Error;
    try {
      raised = await this.writeGenerations(batch, times, pg ? busy : undefined);
    } catch (e) {
      raised = generationError(e);
    }
    // The others' assignments go out now, not after the wait for the held hosts' rows.
    // Nearly always none held (SQLite never holds any): the batch as it is, no filter over it.
    const held = new Set(busy);
    if (held.size === 0) return settle(batch, times, raised);
    settle(batch.filter((b) => !held.has(b.hostId)), times, raised);
    const heldTimes = new Map(busy.map((h) => [h, times.get(h)!]));
    const heldBatch = batch.filter((b) => held.has(b.hostId));
    try {
      raised = await this.writeGenerations(heldBatch, heldTimes);
    } catch (e) {
      raised = generationError(e);
    }
    settle(heldBatch, heldTimes, raised);
  }

  /**
   * Raises the generations of `times`' hosts and records their bundles, in one transaction; with
   * `busy` (PostgreSQL), hosts whose row is held elsewhere are skipped and listed there (see
   * raiseGenerations). Answers each raised host's last new generation.
   */
  private async writeGenerations(batch: readonly PendingAssign[], times: ReadonlyMap<string, number>, busy?: string[]): Promise<Map<string, number>> {
    const pg = this.ctx.db.dialect === 'postgres';
    // Run again if PostgreSQL aborted it in favour of another replica's (a deadlock left despite
    // the lock order, a serialization failure): nothing of it was written.
    // The transaction's body is a method, not an async closure made per batch (within.ts says why).
    const tx = txRetrying(this.ctx.db, (t) => this.generationsTx(t, batch, times, busy));
    // SQLite writes in-process, one transaction at a time: its wait is the host timeout's, as before.
    if (!pg) return tx;
    const raised = await within(tx, GENERATION_WRITE_BOUND_MS);
    // Still running (a connection that never answers): its assignments fail, and the next batch
    // goes on; if it commits later, the generations it raised are skipped, never repeated.
    if (raised === LATE) throw new GenerationBusy(`the hosts' generations were not written within ${GENERATION_WRITE_BOUND_MS} ms`);
    return raised;
  }

  /** One attempt of writeGenerations' transaction, on its handle `t`. */
  private async generationsTx(t: Db, batch: readonly PendingAssign[], times: ReadonlyMap<string, number>, busy?: string[]): Promise<Map<string, number>> {
    const pg = this.ctx.db.dialect === 'postgres';
    const now = Date.now();
    if (pg) {
      busy?.splice(0);
      // Bounded: a row held elsewhere fails this transaction (below), not every later one behind
      // it; and a statement past GENERATION_WRITE_BOUND_MS is cancelled by the server itself, its
      // locks given back, instead of holding them for as long as it hangs.
      // Not idle_in_transaction_session_timeout: the server ends such a session with a FATAL, a
      // connection error between queries, which is not this transaction's to answer.
      await boundGenerationWrites(t);
    }
    const out = await raiseGenerations(t, times, busy);
    const skipped = new Set(busy);
    // In (host, bundle) order, as raiseGenerations locks: two replicas' inserts of the same pairs
    // wait for each other instead of deadlocking.
    // Loops, not closures made per batch over every host (within.ts says why).
    const byPair = new Map<string, [string, string]>();
    for (const b of batch) if (!skipped.has(b.hostId)) byPair.set(`${b.hostId} ${b.bundleDigest}`, [b.hostId, b.bundleDigest]);
    const pairs: [string, string][] = [];
    for (const key of [...byPair.keys()].sort()) pairs.push(byPair.get(key)!);
    for (const chunk of chunks(pairs)) {
      const values: unknown[] = [];
      for (const [h, d] of chunk) values.push(h, d, now);
      await t.run(`INSERT INTO host_bundles (host_id, bundle_digest, assigned_at) VALUES ${placeholders(chunk.length, '(?, ?, ?)')} ON CONFLICT DO NOTHING`, values);
    }
    // A host removed just before (its row gone): what was just recorded for it goes too.
    for (const hostId of times.keys()) if (!out.has(hostId) && !skipped.has(hostId)) await t.run('DELETE FROM host_bundles WHERE host_id = ?', [hostId]);
    return out;
  }

  /** Sends an assignment with the host's next generation; resolves with the host's final status. */
  async assign(hostId: string, a: Omit<Assignment, 'generation'>, timeoutMs: number): Promise<StatusMsg | { type: 'timeout' } | { type: 'offline' }> {
    // Everything (its welcome, its generation, its answer) within the caller's timeout.
    const deadline = Date.now() + timeoutMs;
    const conn = this.conns.get(hostId);
    if (!conn) return { type: 'offline' };
    const welcomed = await within(conn.welcomed, timeoutMs);
    if (welcomed === LATE) return { type: 'timeout' };
    if (!welcomed) return { type: 'offline' };
    let generation: number;
    try {
      const next = await within(this.nextGeneration(hostId, a.bundleDigest), deadline - Date.now());
      if (next === LATE) return { type: 'timeout' };
      generation = next;
    } catch (e) {
      // Its row went meanwhile (removed): nothing assigned, like a host not connected.
      if (e instanceof HostNotEnrolled) return { type: 'offline' };
      // Not the host's answer: nothing was sent, and the deploy is tried again (pipeline.ts).
      if (e instanceof GenerationBusy) return { type: 'status', deploymentId: a.deploymentId, generation: 0, state: 'refused', code: 'GENERATION_BUSY', message: e.message };
      throw e;
    }
    // Removed, or reconnected, while the generation was written: this channel no longer stands for
    // the host (a waiter registered now would only be left to its timeout).
    if (this.conns.get(hostId) !== conn || conn.removed) return { type: 'offline' };
    // Its waiter holds data and the hub's own timeout handler, not closures made per assignment (within.ts says why); the Promise executor below is the one left.
    let resolve!: Waiter['resolve'];
    const result = new Promise<StatusMsg | { type: 'timeout' } | { type: 'offline' }>((r) => (resolve = r));
    const w: Waiter = { deploymentId: a.deploymentId, hostId, generation, resolve };
    const key = `${hostId} ${a.deploymentId}`;
    const set = this.waiters.get(key) ?? new Set<Waiter>();
    set.add(w);
    this.waiters.set(key, set);
    w.timer = setTimeout(this.waiterTimedOut, Math.max(0, deadline - Date.now()), w).unref();
    conn.sendShared(this.assignmentBytes(a), `,"generation":${generation}}}`);
    return result;
  }

  /**
   * `{"type":"assign","assignment":{…}}` without its two closing braces, serialised (UTF-8) once
   * per assignment object (a deploy sends one object to all its hosts): each host's frame only
   * adds its generation, which is what differs, then is sealed with that channel's key.
   */
  private assignmentBytes(a: Omit<Assignment, 'generation'>): Buffer {
    let bytes = this.assignBytes.get(a);
    if (bytes === undefined) {
      const { generation: _ignored, ...rest } = a as Assignment;
      bytes = Buffer.from(JSON.stringify({ type: 'assign', assignment: rest }).slice(0, -2), 'utf8');
      this.assignBytes.set(a, bytes);
    }
    return bytes;
  }

  private readonly waiterTimedOut = (w: Waiter): void => {
    if (this.dropWaiter(w)) w.resolve({ type: 'timeout' });
  };

  private dropWaiter(w: Waiter): boolean {
    const key = `${w.hostId} ${w.deploymentId}`;
    const set = this.waiters.get(key);
    if (!set?.delete(w)) return false;
    if (set.size === 0) this.waiters.delete(key);
    clearTimeout(w.timer);
    return true;
  }

  /**
   * A host was removed (server/hosts/removal.ts): its channel, if this replica holds it, is closed
   * at once (4403 HOST_REMOVED), and every deploy waiting here for its answer ends as failed with
   * HOST_REMOVED instead of waiting for its timeout. Its reconnects are refused: its row is gone.
   */
  removed(hostId: string): void {
    const conn = this.conns.get(hostId);
    if (conn) {
      conn.removed = true;
      this.conns.delete(hostId);
      this.inventoryWritten.delete(hostId);
      this.seenWritten.delete(hostId);
      this.dropPendingInventory(hostId);
      conn.kick(4403, 'HOST_REMOVED');
      publish(this.ctx, 'host.disconnected', { hostId });
    }
    for (const [key, set] of [...this.waiters]) {
      if (!key.startsWith(`${hostId} `)) continue;
      for (const w of [...set]) {
        this.dropWaiter(w);
        w.resolve({ type: 'status', deploymentId: w.deploymentId, generation: 0, state: 'failed', code: 'HOST_REMOVED', message: 'the host was removed from the server' });
      }
    }
  }

  /**
   * The hosts this replica holds a channel to, or deploys waiting for, whose row is gone (removed
   * through another replica, or by this one): each handled as removed(). Run on every removal
   * notice; a notice missed while the listener reconnected is made up for at its next attach.
   */
  private async sweepRemoved(): Promise<void> {
    const ids = [...new Set([...this.conns.keys(), ...[...this.waiters.values()].flatMap((set) => [...set].map((w) => w.hostId))])];
    if (ids.length === 0 || this.closed) return;
    try {
      const live = new Set<string>();
      for (const chunk of chunks(ids)) {
        const rows = await this.ctx.db.query<{ id: string }>(`SELECT id FROM hosts WHERE id IN (${chunk.map(() => '?').join(', ')})`, chunk);
        for (const r of rows) live.add(r.id);
      }
      for (const id of ids) if (!live.has(id) && !this.closed) this.removed(id);
    } catch (e) {
      this.ctx.log.warn({ err: (e as Error).message }, 'removed hosts not swept');
    }
  }

  /** Ends every channel and handshake (the server stops); called again, does nothing. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    void this.unlisten?.().catch(() => undefined);
    // Nothing written after the server stops (its database may already be closed).
    for (const hostId of [...this.inventoryPending.keys()]) this.dropPendingInventory(hostId);
    this.statuses.close();
    this.alertBudget.close();
    this.inventoryBudget.close();
    this.pending.closeAll();
    for (const c of this.conns.values()) c.end();
    // A deploy still waiting for a host's answer gets `offline` now (it is retried), not at its timeout.
    for (const set of [...this.waiters.values()]) {
      for (const w of [...set]) {
        this.dropWaiter(w);
        w.resolve({ type: 'offline' });
      }
    }
    this.wss?.close();
  }
}
