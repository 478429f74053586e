/**
 * Shared set-up of the channel tests: a real server with the real host hub and enrolment route,
 * a host enrolled through the API with a real agent, and a man-in-the-middle WebSocket relay on
 * 127.0.0.1 that can rewrite, drop, swap or inject frames in either direction; and a server by hand
 * (the real handshake and MAC frames) that sends what a test tells it.
 */
import { generateKeyPairSync } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect, createServer as tcpServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { testServer } from '../support.js';
import { createApiKey } from '../../../server/auth/api-keys.js';
import { HostHub } from '../../../server/channel/hub.js';
import { loadServerKey } from '../../../server/channel/server-key.js';
import { hostRoutes } from '../../../server/routes/hosts.js';
import { startAgent, type Agent, type AgentOptions } from '../../../host/agent/agent.js';
import type { Assignment, ChannelFeature, HostFacts, HostMessage, ServerMessage } from '../../../src/protocol/messages.js';
import { CHANNEL_PROTOCOL, HostHandshake, ServerHandshake } from '../../../src/protocol/handshake.js';
import { loadIdentity } from '../../../host/agent/identity.js';
import { MacChannel } from '../../../src/protocol/session-keys.js';
import { spkiBase64 } from '../../../src/trust/keyid.js';
import { nonceFrom, REFUSAL_NONCE_HEADER } from '../../../src/protocol/refusal.js';

export const FACTS = {
  kernel: '6.1.0-test', architecture: 'amd64',
  runc: { present: true, version: '1.1.12' },
  seccomp: { available: true, actions: ['SCMP_ACT_ERRNO'] },
  apparmor: { present: false, enforcing: false, parser: false },
  // A null a host may send: under the v1 scheme a relay could turn it into 1e999 unnoticed.
  ebpf: { tracefs: false, bpffs: false, bpftrace: false, usable: false, bpftraceVersion: null },
  cgroup: { version: 'v1' },
  userNamespaces: { available: true, max: 100 },
} as unknown as HostFacts;

export const frameText = (d: RawData) => (Array.isArray(d) ? Buffer.concat(d) : Buffer.from(d as Buffer)).toString('utf8');

export async function until(what: string, fn: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface ChannelServer {
  url: string;
  hub: HostHub;
  hostId: string;
  /** An admin API key of the server. */
  adminKey: string;
  /** The server's context (its database). */
  ctx: Awaited<ReturnType<typeof testServer>>['ctx'];
  /** A copy of the enrolled host's state directory (each agent gets its own). */
  stateDir(): string;
  agent(serverUrl: string, o?: Partial<AgentOptions>): Promise<Agent>;
  /** Stops the server only, its hosts still running (as a SIGTERM does); close() still cleans up. */
  stopServer(): Promise<void>;
  close(): Promise<void>;
}

/** A server with the hub, and one host enrolled through the real API by a real agent. */
export async function channelServer(config: Parameters<typeof testServer>[0] = {}): Promise<ChannelServer> {
  let hub!: HostHub;
  const server = await testServer(config, {
    extend: async (ctx) => {
      const key = await loadServerKey(ctx.config.dataDir);
      hub = new HostHub(ctx, key.privateKey);
      return { routers: [hostRoutes(ctx, hub, key.publicKeyB64)], onListen: (s) => hub.attach(s), closing: () => hub.close(), close: async () => hub.close() };
    },
  });
  const admin = (await createApiKey(server.ctx.db, 'admin', 'admin')).key;
  const res = await fetch(`${server.url}/api/v1/hosts/tokens`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: '{"labels":{}}' });
  const { token } = (await res.json()) as { token: string };
  const dirs: string[] = [];
  const base = mkdtempSync(join(tmpdir(), 'ct-channel-'));
  dirs.push(base);
  const agents: Agent[] = [];
  const agent = async (serverUrl: string, o: Partial<AgentOptions> = {}, stateDir = copy()) => {
    const a = await startAgent({
      serverUrl, stateDir, name: 'relay-host', facts: async () => FACTS, maxBackoffMs: 300,
      runner: { run: async () => ({ state: 'refused', code: 'USAGE', message: 'not in this test' }) },
      inventory: async () => [], log: (m, e) => { if (process.env.CT_DEBUG) console.log(m, e); }, ...o,
    });
    agents.push(a);
    return a;
  };
  function copy(): string {
    const d = mkdtempSync(join(tmpdir(), 'ct-channel-host-'));
    dirs.push(d);
    cpSync(base, d, { recursive: true });
    return d;
  }
  let stopped: Promise<void> | undefined;
  const first = await agent(server.url, { enrollToken: token }, base);
  await until('enrolled host connected', () => first.connected());
  await first.stop();
  await until('enrolled host gone', () => !hub.connected(first.hostId));
  return {
    url: server.url, hub, hostId: first.hostId, adminKey: admin, ctx: server.ctx, stateDir: copy,
    agent: (url, o) => agent(url, o),
    stopServer: () => (stopped ??= server.close()),
    async close() {
      for (const a of agents) await a.stop();
      await (stopped ??= server.close());
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    },
  };
}

export interface RelayedConnection {
  /** Frames host → server and server → host, as relayed (after rewriting); rewrites get the index of the frame received. */
  up: string[];
  down: string[];
  /** How the server closed its side (code, reason), once it did. */
  serverClose: Promise<{ code: number; reason: string }>;
  upstream: WebSocket;
  /** The host's side, which a test can close with any code (as anything on the path can). */
  client: WebSocket;
  /** The nonce the host sent for a signed refusal (forwarded to the server). */
  nonce?: string;
}

export type Rewrite = (text: string, index: number, c: RelayedConnection) => string | string[] | null;

/** A WebSocket relay on 127.0.0.1 between agents and the server, rewriting frames as told. */
export class Relay {
  readonly connections: RelayedConnection[] = [];
  toServer: Rewrite = (t) => t;
  toHost: Rewrite = (t) => t;
  private readonly http: Server = createServer();
  private readonly wss = new WebSocketServer({ server: this.http, handleProtocols: (p) => [...p][0] ?? false });

  constructor(private readonly target: string) {
    this.wss.on('connection', (client, req) => {
      const nonce = nonceFrom(req.headers[REFUSAL_NONCE_HEADER]);
      const upstream = new WebSocket(`${this.target.replace(/^http/, 'ws')}${req.url}`, client.protocol ? [client.protocol] : [], nonce ? { headers: { [REFUSAL_NONCE_HEADER]: nonce } } : {});
      let closed: (v: { code: number; reason: string }) => void = () => undefined;
      const c: RelayedConnection = { up: [], down: [], upstream, client, nonce, serverClose: new Promise((r) => (closed = r)) };
      this.connections.push(c);
      const pending: string[] = [];
      upstream.on('open', () => pending.splice(0).forEach((f) => upstream.send(f)));
      const relay = (to: WebSocket, rw: () => Rewrite, log: string[], queue?: string[]) => {
        let received = 0;
        return (d: RawData) => {
        const out = rw()(frameText(d), received++, c);
        for (const f of out === null ? [] : Array.isArray(out) ? out : [out]) {
          log.push(f);
          if (queue && to.readyState === WebSocket.CONNECTING) queue.push(f);
          else if (to.readyState === WebSocket.OPEN) to.send(f);
        }
        };
      };
      client.on('message', relay(upstream, () => this.toServer, c.up, pending));
      upstream.on('message', relay(client, () => this.toHost, c.down));
      upstream.on('close', (code, reason) => {
        closed({ code, reason: reason.toString() });
        if (client.readyState === WebSocket.OPEN) client.close(code >= 4000 ? code : 1000, reason.toString());
      });
      client.on('close', () => upstream.close());
      upstream.on('error', () => undefined);
      client.on('error', () => undefined);
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((r) => this.http.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.http.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    this.wss.close();
    await new Promise((r) => this.http.close(r));
  }
}

export interface HandServer {
  url: string;
  hostId: string;
  /** Every message the host sent after its hello, over all connections, opened (MAC checked). */
  received: HostMessage[];
  /** Connections whose hello was accepted. */
  welcomed(): number;
  /** Sends to the current connection. */
  send(m: ServerMessage): void;
  close(): Promise<void>;
}

/**
 * A server by hand on 127.0.0.1, for one host it enrolled itself: `stateDir` gets the host's key
 * and an enrolment record naming this server's key (and `generation`, as older agents kept it
 * there). It answers every valid hello with a welcome listing `features` (none: an older server).
 */
export async function handServer(stateDir: string, o: { features?: ChannelFeature[]; generation?: number } = {}): Promise<HandServer> {
  const serverKey = generateKeyPairSync('ed25519');
  const hostKey = generateKeyPairSync('ed25519');
  const hostId = '00000000-0000-4000-8000-000000000001';
  writeFileSync(join(stateDir, 'host-key.pem'), hostKey.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
  writeFileSync(join(stateDir, 'enrolment.json'), JSON.stringify({ hostId, serverPublicKey: spkiBase64(serverKey.publicKey), generation: o.generation ?? 0 }));
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: (p) => (p.has(CHANNEL_PROTOCOL) ? CHANNEL_PROTOCOL : false) });
  const received: HostMessage[] = [];
  let welcomed = 0;
  let current: ((m: ServerMessage) => void) | undefined;
  wss.on('connection', (ws) => {
    const hs = new ServerHandshake(hostId, serverKey.privateKey, hostKey.publicKey);
    let mac: MacChannel<HostMessage, ServerMessage> | undefined;
    ws.send(hs.challenge(), { binary: false });
    ws.on('message', (d) => {
      if (!mac) {
        const { hello, keys } = hs.hello(Buffer.from(frameText(d)));
        const m = new MacChannel<HostMessage, ServerMessage>(keys);
        mac = m;
        current = (msg) => ws.send(m.seal(msg));
        welcomed++;
        return current({ type: 'welcome', hostId, generation: hello.generation, ...(o.features ? { features: o.features } : {}) });
      }
      received.push(mac.open(frameText(d)));
    });
  });
  await new Promise((r) => wss.once('listening', r));
  return {
    url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    hostId,
    received,
    welcomed: () => welcomed,
    send: (m) => current?.(m),
    async close() {
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => wss.close(r));
    },
  };
}

/** A rawHost handler answering every assignment `running`; each message is also pushed to `got`, when given. */
export function answersRunning(got?: ServerMessage[]): (m: ServerMessage, send: (m: HostMessage) => void) => void {
  return (m, send) => {
    got?.push(m);
    if (m.type === 'assign') send({ type: 'status', deploymentId: m.assignment.deploymentId, generation: m.assignment.generation, state: 'running' });
  };
}

/**
 * The enrolled host by hand (an older or misbehaving agent): the real handshake and MAC frames, then
 * every message the server sends goes to `onMessage`, which can answer with `send`; `generation`:
 * the highest one its hello says it accepted (else its state directory's).
 */
export async function rawHost(server: ChannelServer, onMessage: (m: ServerMessage, send: (m: HostMessage) => void) => void, o: { generation?: number } = {}) {
  const id = await loadIdentity(server.stateDir());
  const hostId = id.hostId!;
  const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/api/v1/hosts/channel?host=${hostId}`, [CHANNEL_PROTOCOL]);
  const hs = new HostHandshake(hostId, id.privateKey, id.serverPublicKey!);
  let mac: MacChannel<ServerMessage, HostMessage> | undefined;
  const send = (m: HostMessage) => ws.send(mac!.seal(m));
  ws.on('message', (d) => {
    if (!mac) {
      hs.challenge(Buffer.from(frameText(d)));
      const { frame, keys } = hs.hello(FACTS, o.generation ?? id.generation);
      mac = new MacChannel(keys);
      return void ws.send(frame, { binary: false });
    }
    onMessage(mac.open(frameText(d)), send);
  });
  return { ws, hostId, send };
}

export interface TcpProxy {
  /** http://127.0.0.1:<port> */
  url: string;
  /** Connections accepted so far. */
  accepted(): number;
  /**
   * The connections open now stop forwarding either way, and stay open: a network that dropped
   * without a FIN. Later connections are forwarded as usual.
   */
  freeze(): void;
  /** Destroys the connections open now (both sides), as a network reset. */
  cut(): void;
  close(): void;
}

/** What a tcpProxy does with a new connection: forwards it, answers a busy server's 503, or resets it. */
export type ProxyAnswer = 'pass' | 'http503' | 'reset';

/**
 * A TCP relay on 127.0.0.1 to `target`'s port, every chunk delayed `delayMs`; `answer` decides,
 * for each new connection, whether it is forwarded (the default) or refused as the server is not.
 */
export async function tcpProxy(target: string, delayMs = 0, answer: () => ProxyAnswer = () => 'pass'): Promise<TcpProxy> {
  const port = Number(new URL(target).port);
  const socks = new Set<Socket>();
  let pairs: { frozen: boolean; socks: Socket[] }[] = [];
  let accepted = 0;
  const srv = tcpServer((c) => {
    accepted++;
    const how = answer();
    if (how !== 'pass') {
      socks.add(c);
      c.on('error', () => undefined);
      c.on('close', () => socks.delete(c));
      if (how === 'reset') c.destroy();
      else c.once('data', () => c.end('HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n'));
      return;
    }
    const u = connect({ host: '127.0.0.1', port });
    const pair = { frozen: false, socks: [c, u] };
    pairs.push(pair);
    for (const s of [c, u]) {
      socks.add(s);
      s.on('error', () => undefined);
      s.on('close', () => socks.delete(s));
    }
    const later = (fn: () => void) => (delayMs ? setTimeout(fn, delayMs) : fn());
    const pipe = (a: Socket, b: Socket) => {
      a.on('data', (d) => later(() => !pair.frozen && !b.destroyed && b.write(d)));
      a.on('close', () => later(() => !pair.frozen && b.destroy()));
    };
    pipe(c, u);
    pipe(u, c);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`,
    accepted: () => accepted,
    freeze: () => {
      for (const p of pairs) p.frozen = true;
      pairs = [];
    },
    cut: () => {
      for (const p of pairs) for (const s of p.socks) s.destroy();
      pairs = [];
    },
    close: () => {
      for (const s of socks) s.destroy();
      srv.close();
    },
  };
}

/**
 * A TCP relay on 127.0.0.1 to `target`'s port whose host->server direction carries `bytesPerSecond`
 * (a slow uplink): nothing is dropped, what arrives faster waits in the relay. The other direction
 * is forwarded at once.
 */
export async function slowUplink(target: string, bytesPerSecond: number): Promise<Pick<TcpProxy, 'url' | 'accepted' | 'close'>> {
  const port = Number(new URL(target).port);
  const socks = new Set<Socket>();
  let accepted = 0;
  const srv = tcpServer((c) => {
    accepted++;
    const u = connect({ host: '127.0.0.1', port });
    for (const s of [c, u]) {
      socks.add(s);
      s.on('error', () => undefined);
      s.on('close', () => socks.delete(s));
    }
    u.on('data', (d) => !c.destroyed && c.write(d));
    u.on('close', () => c.destroy());
    const queue: Buffer[] = [];
    c.on('data', (d) => void queue.push(d));
    // Every 50 ms, a 20th of a second's bytes.
    const tick = setInterval(() => {
      let budget = Math.floor(bytesPerSecond / 20);
      while (budget > 0 && queue.length && !u.destroyed) {
        const b = queue[0];
        const n = Math.min(b.length, budget);
        u.write(b.subarray(0, n));
        if (n === b.length) queue.shift();
        else queue[0] = b.subarray(n);
        budget -= n;
      }
    }, 50);
    c.on('close', () => {
      clearInterval(tick);
      u.destroy();
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`,
    accepted: () => accepted,
    close: () => {
      for (const s of socks) s.destroy();
      srv.close();
    },
  };
}

/** An assignment of `production/web` naming bundle `digest` (the server serves it from its bundles directory). */
export function testAssignment(deploymentId: string, digest = `sha256:${'d'.repeat(64)}`): Omit<Assignment, 'generation'> {
  return { deploymentId, environment: 'production', app: 'web', bundle: `registry.example/web@${digest}`, bundleDigest: digest, imageDigest: `sha256:${'c'.repeat(64)}`, download: `/api/v1/hosts/bundles/${digest}` };
}
