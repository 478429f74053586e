import { createConnection, createServer, type Server } from 'node:net';
import { chmod, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CtError } from '../../src/core/errors.js';
import { CONTAINER_ACTIONS, type ContainerAction, type ContainerState } from '../../src/protocol/messages.js';
import type { ErrorCode } from '../../src/core/codes.js';
import type { LocalRunner } from './runner.js';

/**
 * The running agent's control socket (<state>/agent.sock, mode 0600): `ct host stop|start|…` on
 * the host ask the agent to act, so that their actions take the same turn as assignments, restart
 * policy and the channel's actions (LocalRunner), and are refused with CONTAINER_BUSY while a
 * deploy replaces that container — instead of acting on runc under a deploy in flight. One JSON
 * request per connection, one JSON answer.
 */
export const controlPath = (stateDir: string) => join(stateDir, 'agent.sock');

export type ControlRequest = ActionRequest | { type: 'ping' };
interface ActionRequest {
  type: 'action';
  container: string;
  action: ContainerAction;
  signal?: string;
  graceSeconds?: number;
  /** The caller gives up after this long: an action whose turn comes later is not done (CONTAINER_BUSY). */
  waitMs: number;
}
export type ControlAnswer = { state: ContainerState } | { code: string; message: string };

const MAX_REQUEST = 4096;
/** How long `ct host` waits for its turn behind the agent's work (a deploy's health gate can be long). */
export const CONTROL_WAIT_MS = 60_000;

/**
 * Refuses to go on when another agent answers on the state directory's control socket. Called first
 * by `ct host run`, before it recovers anything: a second agent must not "recover" a replace the
 * live one is still health-checking (both rolled back at once and left the app down).
 */
export async function assertNoOtherAgent(stateDir: string): Promise<void> {
  const path = controlPath(stateDir);
  if ((await ask(path, undefined, 1000)) !== undefined) throw new CtError('USAGE', `another agent is running on ${stateDir} (it answers on ${path})`, { stateDir });
}

export async function serveControl(stateDir: string, act: (container: string, req: Omit<ActionRequest, 'type' | 'container' | 'waitMs'>, deadline: number) => Promise<{ status: ContainerState }>): Promise<{ close(): Promise<void> }> {
  const path = controlPath(stateDir);
  // A socket file left by an agent that died is removed; one another live agent answers on is not.
  await assertNoOtherAgent(stateDir);
  await rm(path, { force: true });
  const server: Server = createServer({ allowHalfOpen: false }, (sock) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.setTimeout(10_000, () => sock.destroy());
    sock.on('error', () => undefined);
    sock.on('data', (d: string) => {
      buf += d;
      if (buf.length > MAX_REQUEST) return void sock.end(`${JSON.stringify({ code: 'USAGE', message: 'request too large' })}\n`);
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      sock.setTimeout(0);
      void answer(buf.slice(0, nl)).then((a) => sock.end(`${JSON.stringify(a)}\n`));
    });
  });
  const answer = async (line: string): Promise<ControlAnswer> => {
    let r: ControlRequest;
    try {
      r = JSON.parse(line) as ControlRequest;
    } catch {
      return { code: 'USAGE', message: 'request is not JSON' };
    }
    if (r?.type === 'ping') return { state: 'running' };
    if (r?.type !== 'action' || typeof r.container !== 'string' || !CONTAINER_ACTIONS.includes(r.action)) return { code: 'USAGE', message: 'not an action request' };
    const waitMs = Math.min(Math.max(Number(r.waitMs) || 0, 0), 10 * CONTROL_WAIT_MS);
    try {
      const rec = await act(r.container.slice(0, 64), { action: r.action, signal: r.signal, graceSeconds: r.graceSeconds }, Date.now() + waitMs);
      return { state: rec.status };
    } catch (e) {
      return { code: String((e as { code?: string }).code ?? 'RUNTIME_FAILED').slice(0, 64), message: (e as Error).message.slice(0, 500) };
    }
  };
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  await chmod(path, 0o600);
  return {
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The agent's control socket acting through its runner; `resync` sends the inventory after each action. */
export function serveRunnerControl(stateDir: string, runner: Pick<LocalRunner, 'action'>, resync: () => void): Promise<{ close(): Promise<void> }> {
  return serveControl(stateDir, async (c, req, deadline) => {
    const rec = await runner.action(c, req, { deadline });
    resync();
    return rec;
  });
}

/**
 * Sends one request to the agent of a state directory; undefined when no agent answers there (no
 * socket, or a stale one): the caller then acts itself. Without a request it only pings.
 */
export async function ask(path: string, req: ControlRequest | undefined, timeoutMs: number): Promise<ControlAnswer | undefined> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(path);
    let buf = '';
    let connected = false;
    const timer = setTimeout(() => {
      sock.destroy();
      // Connected but no answer in time: the agent is busy; the request will not be done late.
      if (connected) resolve({ code: 'CONTAINER_BUSY', message: `the agent did not answer within ${Math.round(timeoutMs / 1000)} s` });
      else resolve(undefined);
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => {
      connected = true;
      sock.write(`${JSON.stringify(req ?? { type: 'ping' })}\n`);
    });
    sock.on('data', (d: string) => (buf += d.slice(0, MAX_REQUEST)));
    sock.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (!connected && (e.code === 'ENOENT' || e.code === 'ECONNREFUSED')) return resolve(undefined);
      reject(new CtError('IO_ERROR', `agent control socket ${path}: ${e.message}`, { path }));
    });
    sock.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(buf) as ControlAnswer);
      } catch {
        resolve({ code: 'RUNTIME_FAILED', message: 'the agent closed the control socket without an answer' });
      }
    });
  });
}

/** An agent's refusal as the error `ct host` reports. */
export function controlError(a: Extract<ControlAnswer, { code: string }>, container: string): CtError {
  return new CtError(a.code as ErrorCode, a.message, { container });
}
