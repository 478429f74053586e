import { sign } from 'node:crypto';
import { existsSync, mkdirSync, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { removeStaleTemps, tempPathFor } from '../../src/core/fs.js';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { WebSocket } from 'ws';
import { CtError } from '../../src/core/errors.js';
import { publicKeyFrom } from '../../src/trust/keyid.js';
import { MacChannel } from '../../src/protocol/session-keys.js';
import { CHANNEL_PROTOCOL, HostHandshake } from '../../src/protocol/handshake.js';
import { jittered } from './backoff.js';
import { keepAlive } from '../../src/protocol/keepalive.js';
import type { Assignment, ContainerAction, ContainerState, HostFacts, HostMessage, InventoryItem, ServerMessage } from '../../src/protocol/messages.js';
import { LOG_CURSOR_RE, type LogLine } from '../../src/protocol/logs.js';
import { hostRequestText } from '../../src/protocol/request-signature.js';
import { parsePublishedPorts } from '../../src/protocol/ports.js';
import { loadIdentity, saveIdentity, type HostIdentity } from './identity.js';
import { GenerationRecord } from './generation-record.js';
import { AlertBacklog } from './alerts.js';
import { MAX_VSA_BYTES } from '../../src/attest/vsa.js';
import { claimsRefusal, readRefusal, REFUSAL_NONCE_HEADER, refusalNonce } from '../../src/protocol/refusal.js';
import { Refusals } from './refusals.js';
import { NAME } from '../../src/core/name.js';

/** What the agent does with a verified-to-be assignment: verify locally, enforce, run. */
export interface AssignmentRunner {
  run(a: Assignment, ctpPath: string): Promise<{ state: ContainerState; code?: string; message?: string; exitCode?: number | null }>;
  /**
   * Set while the assignment's app is held (a replace the previous agent left, its check being
   * resumed): resolves when the hold ends. The assignment then waits outside the queue.
   */
  held?(a: Assignment): Promise<void> | undefined;
}

export interface AgentOptions {
  serverUrl: string;
  stateDir: string;
  name: string;
  enrollToken?: string;
  facts: () => Promise<HostFacts>;
  runner: AssignmentRunner;
  /** The containers this host runs, sent on connect, after each assignment and every 30 s (drift). */
  inventory?: () => Promise<InventoryItem[]>;
  /** The tail of a container's log, for the server's log requests; throws CONTAINER_NOT_FOUND. */
  logs?: (container: string, maxBytes: number) => Promise<string>;
  /** The log as lines (stream, time), the newest maxBytes or those after `since`, and the cursor after them. */
  logLines?: (container: string, o: { maxBytes: number; since?: string }) => Promise<{ lines: LogLine[]; cursor?: string }>;
  /** A lifecycle action on a container (host/lifecycle); throws with a code (CONTAINER_NOT_FOUND, CONTAINER_BUSY, …). */
  action?: (container: string, req: { action: ContainerAction; signal?: string; graceSeconds?: number }) => Promise<{ status: ContainerState }>;
  /** The channel's `stop` of a deployment: stops the container that runs it (undefined: none does). */
  stopDeployment?: (deploymentId: string) => Promise<{ status: ContainerState } | undefined>;
  log?: (msg: string, extra?: Record<string, unknown>) => void;
  maxBackoffMs?: number;
  /** From opening the channel to the server's welcome (default HANDSHAKE_DEADLINE_MS); past it the agent connects again. */
  handshakeMs?: number;
  /** How often the agent pings the server once welcomed (default 30 s); two unanswered pings and it connects again. */
  pingMs?: number;
  /** How long a signed HOST_UNKNOWN must answer every connection before the agent stops (default 30 min; refusals.ts). */
  unknownGraceMs?: number;
}

export interface Agent {
  hostId: string;
  /** Sends an alert event to the server (monitor output, agent notes); kept while disconnected (the newest 256). */
  alert(event: Extract<HostMessage, { type: 'event' }>['event'], deploymentId?: string): void;
  report(msg: Extract<HostMessage, { type: 'status' }>): void;
  connected(): boolean;
  /** Sends the container inventory now (it is also sent on connect, after assignments, every 30 s). */
  resync(): Promise<void>;
  stop(): Promise<void>;
  /**
   * Settles when the server said, signed with the key pinned at enrolment, that this host is
   * removed (HOST_REMOVED) or, on every connection for unknownGraceMs, unknown (HOST_UNKNOWN): the
   * agent no longer connects, and its containers are left as they are. Never settles otherwise (a
   * network error, a 5xx, a refused or busy upgrade, an unsigned close or a server restart: it keeps
   * connecting).
   */
  ended: Promise<CtError>;
}

/**
 * From opening the channel to the server's welcome. Without it a server, or anything on the path,
 * that accepted the connection and then said nothing (no upgrade answer, no challenge, no welcome)
 * left the host without a channel for good: nothing closed the socket, so it never reconnected.
 * Longer than the server's own deadline (10 s by default), which is the one a live server enforces.
 */
const HANDSHAKE_DEADLINE_MS = 30_000;

/** How often the agent pings a server that welcomed it (the server's default hostChannel.pingMs). */
const PING_MS = 30_000;

/** How long a status waits for the inventory to ride in its frame before it goes alone. */
const INVENTORY_WAIT_MS = 50;
const LATE = Symbol('late');

/**
 * The host agent: enrols once with a one-time token, then keeps one signed WebSocket channel to
 * the server (reconnecting with backoff), refuses assignments whose generation is not above the
 * last one it accepted, downloads the bundle bytes and hands them to the runner, which verifies
 * them again locally before anything runs.
 */
export async function startAgent(opts: AgentOptions): Promise<Agent> {
  const log = opts.log ?? (() => undefined);
  mkdirSync(opts.stateDir, { recursive: true });
  const id = await loadIdentity(opts.stateDir);
  if (!id.hostId) await enroll(opts, id);
  const generations = await GenerationRecord.open(opts.stateDir, id.hostId!, id.generation, id.generationRecord);
  id.generation = generations.generation;
  if (!id.generationRecord) {
    // From now on the record must be there (see identity.ts Saved, generation-record.ts).
    id.generationRecord = true;
    await saveIdentity(opts.stateDir, id);
  }
  let ws: WebSocket | undefined;
  let stopped = false;
  let send: ((m: HostMessage) => void) | undefined;
  let backoff = 200;
  /** The connected server reads a status's inventory in its frame (welcome `features`; see messages.ts). */
  let statusCarriesInventory = false;
  let chain: Promise<unknown> = Promise.resolve();
  // Alerts raised while the channel is down (a reconnect, the server restarting) go out once it is back.
  const unsent = new AlertBacklog('while disconnected');
  /**
   * The last welcome's admission ticket, shown on the next upgrade: the server keeps a few pending
   * places per host for it, out of a flood's reach (server/channel/admission-ticket.ts). Memory only:
   * after a restart the host waits for an ordinary place once.
   */
  let admission: string | undefined;
  const refusals = new Refusals(opts.unknownGraceMs);
  let end!: (e: CtError) => void;
  const ended = new Promise<CtError>((resolve) => (end = resolve));
  /** The server's signed "removed" (or a lasting "unknown"): no more connections, ever. */
  const finish = (e: CtError) => {
    stopped = true;
    clearInterval(inventoryTimer);
    // The code only: the message is what `ct host run` fails with, printed once by the CLI.
    log('the server refused this host for good', { code: e.code });
    end(e);
  };

  const connect = () => {
    if (stopped) return;
    const url = `${opts.serverUrl.replace(/^http/, 'ws')}/api/v1/hosts/channel?host=${encodeURIComponent(id.hostId!)}`;
    // This connection's nonce, for a refusal the server signs (src/protocol/refusal.ts): only a
    // refusal naming it can stop the agent, never one recorded from another connection.
    const nonce = refusalNonce();
    // The channel's version is the WebSocket subprotocol; the handshake carries it again, signed.
    const sock = new WebSocket(url, [CHANNEL_PROTOCOL], { maxPayload: 1024 * 1024, headers: { [REFUSAL_NONCE_HEADER]: nonce, ...(admission ? { 'x-ct-admission': admission } : {}) } });
    ws = sock;
    // The TCP socket under it, for the keepalive's byte counters (ws keeps its own private).
    let raw: Socket | undefined;
    sock.once('upgrade', (res) => {
      raw = res.socket;
    });
    // terminate(): a close would wait for a peer that is not answering; 'close' then reconnects.
    const deadline = setTimeout(() => {
      log('channel handshake timed out', { code: 'CHANNEL_HANDSHAKE_FAILED' });
      sock.terminate();
    }, opts.handshakeMs ?? HANDSHAKE_DEADLINE_MS);
    deadline.unref();
    // The server's challenge is signed with its long-term key over its exact bytes; our hello signs
    // the whole transcript (challenge + hello); both ends then switch to MAC keys derived from that
    // transcript (src/protocol/handshake.ts). The server's first MAC frame (welcome) confirms it.
    const handshake = new HostHandshake(id.hostId!, id.privateKey, id.serverPublicKey!);
    let challenged = false;
    let mac: MacChannel<ServerMessage, HostMessage> | undefined;
    let welcomed = false;
    /** This connection was answered with a verified HOST_UNKNOWN (refusals.ts counts a streak of them). */
    let unknown = false;
    const refuse = (code: string, err: string) => {
      log('rejected server message', { code, err });
      sock.close(code === 'CHANNEL_VERSION_UNSUPPORTED' ? 4426 : 4401, code);
    };
    sock.on('message', (data, isBinary) => {
      // ws hands a text message over as one Buffer (a fragmented one as several): read in place.
      const frame = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      if (!challenged) {
        challenged = true;
        // A refusal instead of the challenge. Only a verified one counts: a close code (4403, 4401),
        // an HTTP answer or a frame anyone on the path could send leaves the agent connecting again.
        if (!isBinary && claimsRefusal(frame)) {
          let final: CtError | undefined;
          try {
            const code = readRefusal(frame, id.serverPublicKey!, id.hostId!, nonce);
            final = refusals.refused(code, id.hostId!);
            unknown = code === 'HOST_UNKNOWN';
            if (!final) log('the server does not know this host: trying again', { code });
          } catch (e) {
            return refuse('CHANNEL_HANDSHAKE_FAILED', (e as Error).message);
          }
          if (final) finish(final);
          return sock.close();
        }
        try {
          if (isBinary) throw new CtError('CHANNEL_HANDSHAKE_FAILED', 'challenge is not a text frame');
          handshake.challenge(frame);
        } catch (e) {
          return refuse(e instanceof CtError && e.code === 'CHANNEL_VERSION_UNSUPPORTED' ? e.code : 'CHANNEL_HANDSHAKE_FAILED', (e as Error).message);
        }
        void opts.facts().then((facts) => {
          if (sock.readyState !== sock.OPEN) return;
          const { frame: hello, keys } = handshake.hello(facts, id.generation);
          const channel = new MacChannel<ServerMessage, HostMessage>(keys);
          mac = channel;
          sock.send(hello, { binary: false });
        }).catch((e) => refuse('CHANNEL_HANDSHAKE_FAILED', (e as Error).message));
        return;
      }
      // Anything before our hello went out (mac unset) is out of place.
      if (!mac) return refuse('CHANNEL_HANDSHAKE_FAILED', 'server message before the hello');
      let msg: ServerMessage;
      try {
        if (isBinary) throw new CtError('MALFORMED_BUNDLE', 'channel message is not a text frame');
        msg = mac.open(frame);
        if (!msg || typeof msg !== 'object' || typeof msg.type !== 'string') throw new CtError('MALFORMED_BUNDLE', 'channel message has no type');
        if (!welcomed && msg.type !== 'welcome') throw new CtError('CHANNEL_HANDSHAKE_FAILED', 'the first server message after the hello is not welcome');
      } catch (e) {
        return refuse(e instanceof CtError ? e.code : 'MALFORMED_BUNDLE', (e as Error).message);
      }
      if (msg.type === 'welcome') {
        if (welcomed) return;
        // ws emits 'upgrade' before any message: never so, but a channel without its keepalive is none.
        if (!raw) return refuse('CHANNEL_HANDSHAKE_FAILED', 'no upgrade response');
        welcomed = true;
        refusals.interrupted();
        clearTimeout(deadline);
        statusCarriesInventory = Array.isArray(msg.features) && msg.features.includes('status.containers');
        // Sent in a header: only a short token of the ticket's alphabet is kept (anything else, none).
        admission = typeof msg.admission === 'string' && /^[0-9A-Za-z._-]{1,64}$/.test(msg.admission) ? msg.admission : undefined;
        // A server gone without a FIN (its network dropped) answers no ping: the socket is
        // terminated and 'close' connects again, with the backoff.
        keepAlive(sock, raw, opts.pingMs ?? PING_MS, () => log('server answered no ping', { code: 'NETWORK_ERROR' }));
        const channel = mac;
        send = (m) => sock.readyState === sock.OPEN && sock.send(channel.seal(m));
        backoff = 200;
        unsent.drain((event, deploymentId) => send?.({ type: 'event', deploymentId, event }));
        void sendInventory();
        log('connected', { hostId: id.hostId });
      } else if (msg.type === 'logs') {
        const { requestId, container } = msg;
        const maxBytes = Math.min(Math.max(Number(msg.maxBytes) || 0, 1), 1 << 20);
        void (async () => {
          try {
            if (!opts.logs) throw Object.assign(new Error('no logs'), { code: 'CONTAINER_NOT_FOUND' });
            const since = typeof msg.since === 'string' && LOG_CURSOR_RE.test(msg.since) ? msg.since : undefined;
            if (opts.logLines) {
              // Lines with their streams and times, and the cursor to follow from.
              const page = await opts.logLines(container, { maxBytes, since });
              send?.({ type: 'logs', requestId, container, text: page.lines.map((l) => `${l.text}\n`).join(''), lines: page.lines, cursor: page.cursor });
            } else send?.({ type: 'logs', requestId, container, text: await opts.logs(container, maxBytes) });
          } catch (e) {
            send?.({ type: 'logs', requestId, container, code: (e as { code?: string }).code ?? 'IO_ERROR' });
          }
        })();
      } else if (msg.type === 'action') {
        const { requestId, container } = msg;
        void (async () => {
          try {
            if (!opts.action) throw Object.assign(new Error('this agent runs no containers'), { code: 'CONTAINER_NOT_FOUND' });
            const rec = await opts.action(String(container), { action: msg.action, signal: msg.signal, graceSeconds: msg.graceSeconds });
            send?.({ type: 'action', requestId, container, state: rec.status });
          } catch (e) {
            send?.({ type: 'action', requestId, container, code: (e as { code?: string }).code ?? 'RUNTIME_FAILED', message: (e as Error).message.slice(0, 500) });
          }
          await sendInventory();
        })();
      } else if (msg.type === 'stop') {
        // Honoured in turn with assignments: a stop sent after an assignment applies after it.
        chain = chain.then(async () => {
          // Waiting for a hold to end, it never ran: it is dropped and stays undone.
          for (const [key, d] of deferred) {
            if (d.deploymentId !== String(msg.deploymentId)) continue;
            deferred.delete(key);
            d.supersede('was stopped');
          }
          const rec = await opts.stopDeployment?.(String(msg.deploymentId)).catch((e) => {
            log('stop failed', { err: String(e) });
            return undefined;
          });
          if (rec) await answer({ type: 'status', deploymentId: msg.deploymentId, generation: msg.generation, state: rec.status });
          else await sendInventory();
        }).catch((e) => log('stop failed', { err: String(e) }));
      } else if (msg.type === 'assign') {
        // Assignments run one at a time, in the order received.
        chain = chain.then(() => handleAssign(msg.assignment)).catch((e) => log('assignment failed', { err: String(e) }));
      }
    });
    sock.on('close', () => {
      clearTimeout(deadline);
      send = undefined;
      if (!unknown) refusals.interrupted();
      if (stopped) return;
      setTimeout(connect, jittered(backoff)).unref();
      backoff = Math.min(backoff * 2, opts.maxBackoffMs ?? 10_000);
    });
    // An older server picks no subprotocol: ws reports it here; we retry with backoff.
    sock.on('error', (e) => {
      if (/subprotocol/i.test(e.message)) log('rejected server', { code: 'CHANNEL_VERSION_UNSUPPORTED', err: `the server does not speak ${CHANNEL_PROTOCOL}: upgrade host and server together` });
    });
  };

  /** Per held app (environment/app): the newest assignment waiting for the hold to end. */
  const deferred = new Map<string, { deploymentId: string; execute(): Promise<unknown>; supersede(why: string): void }>();

  const handleAssign = async (a: Assignment) => {
    const statusOf = (state: ContainerState, extra: { code?: string; message?: string; exitCode?: number | null } = {}): Extract<HostMessage, { type: 'status' }> =>
      ({ type: 'status', deploymentId: a.deploymentId, generation: a.generation, state, ...extra });
    const status = (state: ContainerState, extra?: { code?: string; message?: string; exitCode?: number | null }) => send?.(statusOf(state, extra));
    // The server is not trusted with file names: every field that reaches a path or a URL is checked.
    const bad = assignmentProblem(a);
    if (bad) return status('refused', { code: 'MALFORMED_BUNDLE', message: `assignment ${bad}` });
    // Safe integers only: 1e21 is an integer too, and would name root filesystems `<id>-1e+21`
    // that no clean-up recognises (every later deploy would leave one behind).
    if (!Number.isSafeInteger(a.generation) || a.generation <= id.generation) {
      log('refused stale assignment', { generation: a.generation, current: id.generation });
      return status('refused', { code: 'STALE_GENERATION', message: `generation ${a.generation} is not above ${id.generation}` });
    }
    id.generation = a.generation;
    try {
      await generations.save(a.generation);
    } catch (e) {
      // Not saved: not acted on (a restart could otherwise take this assignment again).
      return status('failed', { code: 'IO_ERROR', message: `the accepted generation could not be saved: ${(e as Error).message}` });
    }
    // SUPERSEDED: the server's deployment status for an older deployment a newer one overtook.
    const supersede = (why: string) => status('refused', { code: 'SUPERSEDED', message: `generation ${a.generation} ${why} before it ran (the app was held by a replace the previous agent left)` });
    const execute = async () => {
      let path: string;
      try {
        path = await download(opts, id, a);
      } catch (e) {
        return status('failed', { code: 'NETWORK_ERROR', message: (e as Error).message });
      }
      const out = await opts.runner.run(a, path).catch((e) => ({ state: 'failed' as const, code: (e as { code?: string }).code ?? 'RUNTIME_ERROR', message: (e as Error).message }));
      // A deploy that started says what else is so in its message (runner.ts: an app without a DNS name).
      if (out.state === 'running' && out.message) log('deployed with a warning', { deploymentId: a.deploymentId, app: `${a.environment}/${a.app}`, warning: out.message });
      // The download is named by the digest the server assigned, which only a run proves it has:
      // bytes that did not run (other bytes, or refused) must not stay under that name.
      if (out.state !== 'running') await rm(path, { force: true });
      await answer(statusOf(out.state, out));
    };
    // Accepted in order (above). An app still held by a replace the previous agent left (its check
    // may last as long as the bundle's manifest allows) keeps only its newest assignment aside, and
    // the queue goes on with the other apps; when the hold ends that one joins the queue, so it runs
    // before anything that arrives later, in generation order. A newer one supersedes it unrun.
    const key = `${a.environment}/${a.app}`;
    const held = opts.runner.held?.(a);
    if (held || deferred.has(key)) {
      const older = deferred.get(key);
      deferred.set(key, { deploymentId: a.deploymentId, execute, supersede });
      if (older) older.supersede(`was superseded by ${a.generation}`);
      else {
        void (held ?? Promise.resolve()).then(() => {
          if (stopped) return;
          chain = chain.then(async () => {
            const next = deferred.get(key);
            deferred.delete(key);
            // The agent stopped meanwhile: not begun (the server's deploy times out and is retried).
            if (next && !stopped) await next.execute();
          }).catch((e) => log('assignment failed', { err: String(e) }));
        });
      }
      return;
    }
    await execute();
  };

  const inventoryNow = async () => (opts.inventory && send ? opts.inventory().catch(() => undefined) : undefined);
  const sendInventory = async () => {
    const containers = await inventoryNow();
    if (containers) send?.({ type: 'containers', containers });
  };
  /**
   * A status and the inventory after it: one frame to a server that reads them so (half the
   * messages, MACs and server work of a fleet's deploy), else the status and then the inventory.
   * The status never waits on a slow inventory (the runner's, queued behind its other work, can
   * take seconds): past INVENTORY_WAIT_MS it goes alone and the inventory follows when ready.
   */
  const answer = async (status: Extract<HostMessage, { type: 'status' }>) => {
    const inventory = inventoryNow();
    if (statusCarriesInventory) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<typeof LATE>((resolve) => (timer = setTimeout(() => resolve(LATE), INVENTORY_WAIT_MS)));
      const containers = await Promise.race([inventory, late]);
      clearTimeout(timer);
      // Read after the wait: a reconnect meanwhile may have reached a server without the feature.
      if (containers !== LATE && statusCarriesInventory) {
        send?.(containers ? { ...status, containers } : status);
        return;
      }
    }
    send?.(status);
    const containers = await inventory;
    if (containers) send?.({ type: 'containers', containers });
  };
  const inventoryTimer = setInterval(() => void sendInventory(), 30_000);
  inventoryTimer.unref();

  connect();
  return {
    hostId: id.hostId!,
    alert: (event, deploymentId) => (send ? void send({ type: 'event', deploymentId, event }) : unsent.push(event, deploymentId)),
    report: (m) => send?.(m),
    connected: () => Boolean(send),
    resync: () => sendInventory(),
    ended,
    async stop() {
      stopped = true;
      clearInterval(inventoryTimer);
      ws?.close();
      try {
        await chain;
      } finally {
        await generations.close();
      }
    },
  };
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;

function assignmentProblem(a: Assignment): string | undefined {
  if (!a || typeof a !== 'object') return 'is not an object';
  if (typeof a.bundleDigest !== 'string' || !DIGEST.test(a.bundleDigest)) return 'bundleDigest is not a sha256 digest';
  if (typeof a.imageDigest !== 'string' || !DIGEST.test(a.imageDigest)) return 'imageDigest is not a sha256 digest';
  if (a.download !== `/api/v1/hosts/bundles/${a.bundleDigest}`) return 'download path is not the bundle store path of its digest';
  if (typeof a.app !== 'string' || !NAME.test(a.app) || typeof a.environment !== 'string' || !NAME.test(a.environment)) return 'app or environment is not a valid name';
  if (typeof a.deploymentId !== 'string' || a.deploymentId.length > 100) return 'deploymentId is invalid';
  if (a.ports !== undefined) {
    const ports = parsePublishedPorts(a.ports);
    if ('problem' in ports) return `ports: ${ports.problem}`;
  }
  if (a.suspended !== undefined && typeof a.suspended !== 'boolean') return 'suspended is not a boolean';
  if (a.vsas !== undefined && (!Array.isArray(a.vsas) || a.vsas.length > 8 || a.vsas.some((v) => typeof v !== 'string' || v.length > MAX_VSA_BYTES))) return 'vsas: at most 8 VSAs of at most 64 KiB';
  return undefined;
}

async function enroll(opts: AgentOptions, id: HostIdentity): Promise<void> {
  if (!opts.enrollToken) throw new CtError('USAGE', `this host is not enrolled (no enrolment in ${opts.stateDir}): give an enrolment token`, { stateDir: opts.stateDir });
  let res: Response;
  try {
    res = await fetch(`${opts.serverUrl}/api/v1/hosts/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: opts.enrollToken, name: opts.name, publicKey: id.publicKeyB64, facts: await opts.facts() }),
    });
  } catch (e) {
    throw new CtError('NETWORK_ERROR', `enrolment: ${opts.serverUrl} could not be reached: ${(e as Error).message}`, { server: opts.serverUrl });
  }
  const body = (await res.json().catch(() => ({}))) as { hostId?: string; serverPublicKey?: string; error?: { code: string; message: string } };
  // A refusal (token unknown, used or expired; name taken) is the server's answer over the network,
  // classed like a registry refusing credentials (NETWORK_ERROR, exit 12); details carry its code.
  if (res.status !== 201 || !body.hostId || !body.serverPublicKey) {
    throw new CtError('NETWORK_ERROR', `enrolment refused by ${opts.serverUrl}: HTTP ${res.status} ${body.error?.code ?? ''} ${body.error?.message ?? ''}`.trim(), {
      server: opts.serverUrl, status: res.status, serverCode: body.error?.code ?? null,
    });
  }
  id.hostId = body.hostId;
  id.serverPublicKey = publicKeyFrom(body.serverPublicKey);
  await saveIdentity(opts.stateDir, id);
}

async function download(opts: AgentOptions, id: HostIdentity, a: Assignment): Promise<string> {
  const dir = join(opts.stateDir, 'bundles');
  const final = join(dir, `${a.bundleDigest.slice(7)}.ctp`);
  // Kept only after it ran (see above), and the runner hashes it against the assignment's digest
  // again: a bundle this host already holds is not downloaded again (a redeploy to a fleet).
  if (existsSync(final)) return final;
  const time = String(Date.now());
  const sig = sign(null, Buffer.from(hostRequestText('GET', a.download, time)), id.privateKey).toString('base64');
  const res = await fetch(`${opts.serverUrl}${a.download}`, { headers: { 'x-ct-host': id.hostId!, 'x-ct-time': time, 'x-ct-signature': sig } });
  if (res.status !== 200 || !res.body) throw new Error(`bundle download failed: HTTP ${res.status}`);
  mkdirSync(dir, { recursive: true });
  // What a download of these bytes killed earlier left (downloads run one at a time: none is live).
  await removeStaleTemps(final, { kind: 'own-files' }).catch(() => undefined);
  const tmp = tempPathFor(final);
  try {
    await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), createWriteStream(tmp, { mode: 0o600 }));
    await rename(tmp, final);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  return final;
}
