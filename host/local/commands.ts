import { recordedStopGrace } from '../lifecycle/stop-grace.js';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CtError } from '../../src/core/errors.js';
import { RuncRuntime } from '../runtime/runc.js';
import type { ContainerRecord } from '../runtime/state.js';
import { NetworkManager, findNetavark } from '../network/index.js';
import { readNetworkSettings } from '../network/settings.js';
import { claimState, killedRunNames } from '../run/claim.js';
import { checkActionRequest, performAction, type ActionRequest } from '../lifecycle/actions.js';
import { ask, controlError, controlPath, CONTROL_WAIT_MS } from '../agent/control.js';
import { lockStateDir } from '../agent/state-lock.js';
import { dropReplaceRecord, replaceRecordPath, replaceToEnd } from '../lifecycle/replace-record.js';
import { removeAppRootfs } from '../lifecycle/rootfs-dirs.js';
import { ensurePrivateDir } from '../runtime/private-dir.js';
import { monitorRulesOf } from '../monitor/containers.js';
import { followLogs } from '../logs/follow.js';
import { readLogs, type LogEntry, type LogStream } from '../logs/read.js';
import { collectFacts } from '../facts.js';
import { policyHostFacts } from '../../src/protocol/policy-facts.js';

interface Io { out(t: string): void; err(t: string): void }

/** How the agent set its networks up (`ct host run --network-pool/--bridge-prefix/--netavark-dir`), for `ct host` commands. */
/**
 * The host's runtime (and, as root, its networks, with the agent's settings) opened on its state
 * directory, for one `ct host` command next to a running agent: the SQLite state is shared (WAL),
 * and the agent's next reconciliation (within ~2 s) reports any change to the server. Its caller
 * has checked the directory (ensurePrivateDir) before anything else.
 */
async function openHost(stateDir: string): Promise<{ runtime: RuncRuntime; network?: NetworkManager; close(): void }> {
  const settings = await readNetworkSettings(stateDir);
  const network = process.getuid?.() === 0 && settings
    ? new NetworkManager({ stateDir, subnetBase: settings.subnetBase, bridgePrefix: settings.bridgePrefix, paths: settings.netavarkDir ? await findNetavark([settings.netavarkDir]) : undefined })
    : undefined;
  const hooks: { runtime?: RuncRuntime } = {};
  const runtime = hooks.runtime = await RuncRuntime.open({
    stateDir,
    beforeStart: async (id) => {
      // A backstop to hostAction's check (startableWithoutAgent): nothing starts unwatched here
      // that a policy requires watched.
      const rules = await monitorRulesOf(hooks.runtime!, id);
      if (rules?.required) throw requiresAgent(rules.rec.id);
      await network?.resume(id);
    },
  });
  return { runtime, network, close: () => (runtime.close(), network?.close()) };
}

const requiresAgent = (id: string) => new CtError('HOST_CANNOT_ENFORCE', `${id}: monitoring is required and only a running agent (ct host run) watches containers; nothing was done`, { id });

/**
 * Only an agent watches containers (its monitors live in its process). A container whose policy
 * requires monitoring is not started by a command acting without one (HOST_CANNOT_ENFORCE, before
 * anything is done); one with rules that are not required is (its rules, returned: warned of).
 */
async function startableWithoutAgent(runtime: RuncRuntime, id: string): Promise<{ required: boolean } | undefined> {
  const rec = runtime.store.get(id);
  const rules = rec ? await monitorRulesOf(runtime, rec.runcId) : undefined;
  if (rules?.required) throw requiresAgent(id);
  return rules;
}

function ago(iso: string | null): string {
  if (!iso) return '-';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
}

/** `ct host ps`: the containers with their state, health, restarts and exit (code and reason). */
/**
 * `ct host facts --environment ENV`: this machine's facts as the policies read them (what an agent
 * here would report), for `ct policy explain --host FILE` to judge a bundle on this host.
 */
export async function hostFacts(o: { environment: string }, io: Io): Promise<number> {
  io.out(JSON.stringify(policyHostFacts(await collectFacts(), o.environment), null, 2));
  return 0;
}

export async function hostPs(o: { stateDir: string; json?: boolean }, io: Io): Promise<number> {
  // As `ct host run` and `ct run`: a state directory another user may write is not acted on as root.
  await ensurePrivateDir(o.stateDir);
  const h = await openHost(o.stateDir);
  try {
    const list = await h.runtime.list();
    // Held because the desired state suspends it (assigned/<id>.json), or by an operator's stop.
    const suspended = new Set<string>();
    for (const c of list) {
      if (c.status !== 'stopped' || !c.held) continue;
      const rec = await readFile(join(o.stateDir, 'assigned', `${c.id}.json`), 'utf8').then((t) => JSON.parse(t) as { suspended?: boolean }, () => undefined);
      if (rec?.suspended) suspended.add(c.id);
    }
    const killed = await killedRunNames(o.stateDir, (name) => list.some((c) => c.id === name));
    const killedNote = killed.length ? `left by a killed \`ct run\` (no container; \`ct host rm NAME --state-dir ${o.stateDir}\` clears each): ${killed.join(', ')}` : '';
    if (o.json) {
      if (killedNote) io.err(killedNote);
      io.out(JSON.stringify(list.map((c) => ({
        id: c.id, app: c.appName, imageDigest: c.imageDigest, state: c.status, health: c.health, restarts: c.restarts,
        exitCode: c.exitCode, exitReason: c.exitReason, held: c.held, suspended: suspended.has(c.id), startedAt: c.startedAt, finishedAt: c.finishedAt,
        address: h.network?.attachment(c.runcId)?.address ?? null,
      })), null, 2));
      return 0;
    }
    const rows = [['CONTAINER', 'APP', 'STATE', 'HEALTH', 'RESTARTS', 'EXIT', 'REASON', 'SINCE']];
    for (const c of list) {
      const exit = c.status === 'stopped' ? (c.exitKnown ? String(c.exitCode) : '?') : '-';
      rows.push([c.id, c.appName ?? '-', `${c.status}${suspended.has(c.id) ? ' (suspended)' : c.held && c.status === 'stopped' ? ' (held)' : ''}`, c.health, String(c.restarts), exit, c.exitReason ?? '-',
        ago(c.status === 'stopped' ? c.finishedAt : c.startedAt ?? c.createdAt)]);
    }
    const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    io.out(rows.map((r) => r.map((v, i) => v.padEnd(widths[i])).join('  ').trimEnd()).join('\n'));
    if (killedNote) io.out(`\n${killedNote}`);
    return 0;
  } finally {
    h.close();
  }
}

/**
 * `ct host stop|start|restart|kill|pause|resume|rm ID`: the lifecycle actions of the channel and
 * the API, on this host's containers. With an agent running on the state directory the agent does
 * them (its control socket, host/agent/control.ts); without, this command does. The grace period
 * is the manifest's stop_grace_period unless given. A stopped container's network is suspended
 * (its address and ports kept), a removed one's torn down.
 */
export async function hostAction(o: { stateDir: string; id: string } & ActionRequest, io: Io): Promise<number> {
  checkActionRequest(o);
  // Before its socket is asked or its lock taken: a directory others may write is not ours to act in.
  await ensurePrivateDir(o.stateDir);
  // A running agent does it in its turn (after the deploy or action in hand; CONTAINER_BUSY while
  // a deploy replaces this container): acting on runc beside it could race an assignment.
  const req = { type: 'action' as const, container: o.id, action: o.action, signal: o.signal, graceSeconds: o.graceSeconds, waitMs: CONTROL_WAIT_MS };
  const viaAgent = await ask(controlPath(o.stateDir), req, CONTROL_WAIT_MS + 330_000);
  if (viaAgent && 'code' in viaAgent) throw controlError(viaAgent, o.id);
  // Without an agent answering, this command acts itself, holding the directory's lock: an agent
  // still starting (recovering replaces, not serving its socket yet) holds it, and is not raced.
  const lock = viaAgent ? undefined : await lockStateDir(o.stateDir, `ct host ${o.action}`).catch((e: unknown) => {
    throw e instanceof CtError && (e.code === 'USAGE' || e.code === 'CONTAINER_BUSY') ? new CtError('CONTAINER_BUSY', `${e.message}; nothing was done to ${o.id}`, { container: o.id }) : e;
  });
  const h = await openHost(o.stateDir).catch(async (e: unknown) => {
    await lock?.release();
    throw e;
  });
  try {
    if (viaAgent) {
      const rec = h.runtime.store.get(o.id);
      io.out(`${o.id}: ${viaAgent.state}${rec && viaAgent.state === 'stopped' ? exitText(rec) : ''}`);
      return 0;
    }
    // A replace the agent left unfinished (replacing/<id>.json) is the agent's to end at its start:
    // stopping or starting either version here would be undone or misread then. Removing the app
    // ends it for good: the record goes with the container, or the next start would bring it back.
    // A damaged record ends nowhere: its container is the operator's to act on.
    const record = replaceRecordPath(o.stateDir, o.id);
    if (o.action !== 'remove' && (await replaceToEnd(o.stateDir, o.id))) {
      throw new CtError('CONTAINER_BUSY', `${o.id} is in a replace the agent left unfinished (${record}): start the agent, which ends it first; nothing was done`, { container: o.id });
    }
    // A `ct run` in its terminal watches its container and clears it when it stops: starting it
    // again or removing it here raced that clean-up (a restart ended with its rootfs gone).
    const claim = join(o.stateDir, 'run-names', o.id);
    const runClaim = existsSync(claim) ? await claimState(claim) : undefined;
    if (runClaim?.state === 'alive' && ['start', 'restart', 'remove'].includes(o.action)) {
      throw new CtError('CONTAINER_BUSY', `${o.id} is watched by a running \`ct run\` (pid ${runClaim.pid}): stop it there (Ctrl-C) or with \`ct host stop ${o.id}\`, which ends that run; nothing was done`, { container: o.id });
    }
    // A `ct run` killed before its container existed (unpacking, setting its network up) left the
    // claim, a root filesystem and perhaps a network, and no container: rm clears those.
    const known = h.runtime.store.get(o.id);
    if (o.action === 'remove' && runClaim?.state === 'gone' && (!known || known.status === 'removed')) {
      await h.network?.detach(o.id);
      await removeAppRootfs(o.stateDir, o.id);
      await rm(claim, { recursive: true, force: true });
      io.out(`${o.id}: removed (what a killed \`ct run\` left: no container)`);
      return 0;
    }
    const assigned = join(o.stateDir, 'assigned', `${o.id}.json`);
    // The agent's assignment record, or a `ct run`'s claim: either says what the manifest asked.
    const grace = await recordedStopGrace(o.stateDir, o.id);
    // Checked before the action touches anything (a restart stops first, a start releases a hold).
    const rules = o.action === 'restart' || (o.action === 'start' && !['running', 'paused'].includes((await h.runtime.state(o.id).catch(() => undefined))?.status ?? ''))
      ? await startableWithoutAgent(h.runtime, o.id)
      : undefined;
    const rec: ContainerRecord = await performAction(h.runtime, o.id, o, grace === undefined ? undefined : grace * 1000);
    if (rules && rec.status === 'running') io.err(`warning: ${o.id}: started without its monitor (no agent runs); the next agent start watches it`);
    if (rec.status === 'removed') {
      await h.network?.detach(rec.runcId);
      await rm(assigned, { force: true });
      await dropReplaceRecord(o.stateDir, o.id);
      // Removed already: a root filesystem that cannot go (EBUSY) is said, not a failed rm.
      await removeAppRootfs(o.stateDir, o.id).catch((e: unknown) => io.err(`warning: ${o.id}: its root filesystem could not be removed: ${(e as Error).message}`));
      // The name a killed `ct run` still claimed is free again.
      if (runClaim?.state === 'gone') await rm(claim, { recursive: true, force: true });
    } else if (rec.status === 'stopped') await h.network?.suspend(rec.runcId);
    io.out(`${o.id}: ${rec.status}${rec.status === 'stopped' ? exitText(rec) : ''}`);
    return 0;
  } finally {
    h.close();
    await lock?.release();
  }
}

const exitText = (rec: ContainerRecord) => ` (exit ${rec.exitKnown ? rec.exitCode : 'unknown'}${rec.exitReason ? `, ${rec.exitReason}` : ''})`;

export interface LogsOptions {
  stateDir: string;
  id: string;
  follow?: boolean;
  /** Bytes of text from the end (default 64 KiB). */
  tail?: number;
  /** At most this many lines from the end (within `tail` bytes). */
  tailLines?: number;
  stream?: LogStream;
  timestamps?: boolean;
}

/** `ct host logs ID [-f]`: stdout lines to stdout and stderr lines to stderr, merged by time; -f follows until the container stops or Ctrl-C. */
export async function hostLogs(o: LogsOptions, io: Io & { stdout(t: string): void; stderr(t: string): void; onSignal(h: () => void): void }): Promise<number> {
  // As `ct host run` and `ct run`: a state directory another user may write is not acted on as root.
  await ensurePrivateDir(o.stateDir);
  const h = await openHost(o.stateDir);
  try {
    const dir = h.runtime.logDir(o.id);
    if (dir.endsWith('.log')) throw new CtError('USAGE', `${o.id} was created by an older agent: its log is ${dir}`, { id: o.id });
    const show = (e: LogEntry) => {
      if (o.stream && e.stream !== o.stream) return;
      const line = `${o.timestamps ? `${e.time} ` : ''}${e.text}\n`;
      if (e.stream === 'stdout') io.stdout(line);
      else io.stderr(line);
    };
    const tail = o.tail ?? 64 * 1024;
    if (!o.follow) {
      for (const e of (await readLogs(dir, { maxBytes: tail, maxLines: o.tailLines, stream: o.stream })).entries) show(e);
      return 0;
    }
    const stop = new AbortController();
    io.onSignal(() => stop.abort());
    await followLogs(dir, show, {
      tailBytes: tail, tailLines: o.tailLines, stream: o.stream, signal: stop.signal, intervalMs: 250,
      ended: async () => (await h.runtime.state(o.id).catch(() => undefined))?.status !== 'running' && (await h.runtime.state(o.id).catch(() => undefined))?.status !== 'paused',
    });
    return 0;
  } finally {
    h.close();
  }
}
