import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseTrustStore } from '../src/trust/store.js';
import { trustMaterial } from '../src/verify/trust-material.js';
import { loadTrustedRootFile } from '../src/verify/sigstore/trusted-root.js';
import { PolicyStore } from '../src/policy/store.js';
import { PolicyRefresh } from './agent/policy-refresh.js';
import { ChildPolicyReader } from './agent/policy-reader.js';
import type { TrustMaterial } from '../src/verify/report.js';
import { collectFacts } from './facts.js';
import type { HostFacts } from '../src/protocol/messages.js';
import type { RuncRuntime } from './runtime/runc.js';
import { openAgentRuntime } from './agent/host-runtime.js';
import type { HostAlerts } from './agent/alerts.js';
import type { ContainerMonitors } from './monitor/containers.js';
import type { LogLimits } from './runtime/supervisor.js';
import { LocalRunner } from './agent/runner.js';
import { NetworkManager, findNetavark } from './network/index.js';
import { startAgent, type Agent } from './agent/agent.js';
import { saveNetworkSettings } from './network/settings.js';
import { assertNoOtherAgent, serveRunnerControl } from './agent/control.js';
import { lockStateDir } from './agent/state-lock.js';
import { ensurePrivateDir } from './runtime/private-dir.js';

interface Io { out(t: string): void; err(t: string): void }

export interface HostCommandOptions {
  server: string;
  stateDir: string;
  name: string;
  enrollToken?: string;
  trustStore: string;
  /** Sigstore TrustedRoot JSON for keyless attestations (default: the public-good root shipped offline). */
  trustedRoot?: string;
  policies: string;
  /** The environment this host serves; assignments for others are refused. */
  environment?: string;
  /** Bridge subnets <networkPool>.<n>.0/24 (default 10.231), bridges <bridgePrefix><n> (default ctbr). */
  networkPool?: string;
  bridgePrefix?: string;
  /** Where netavark and aardvark-dns are (default: Podman's helper directories). */
  netavarkDir?: string;
  /** Size cap and rotation of each container's stdout and stderr logs. */
  logLimits?: LogLimits;
  /** From opening the channel to the server's welcome (`--handshake-timeout`; default 30 s). */
  handshakeMs?: number;
  /** How often the agent pings the server once welcomed (`--ping-interval`; default 30 s). */
  pingMs?: number;
  /** How long a signed HOST_UNKNOWN must answer every connection before the agent stops (`--unknown-grace`; default 30 min). */
  unknownGraceMs?: number;
}

/**
 * `ct host run`: the runtime host agent until SIGINT/SIGTERM (exit 0), or until the server says the
 * host is removed (HOST_REMOVED, HOST_UNKNOWN: agent.ended). Containers outlive the agent.
 */
export async function runHostAgent(o: HostCommandOptions, io: Io): Promise<number> {
  // Before anything in the state directory is touched (recovery acts on containers and records):
  // an agent that serves its control socket answers, one still starting holds the directory's
  // lock (held here until the agent has ended).
  // SIGHUP (reload the policies) is taken first: its default would end an agent still starting
  // (the lock wait below lasts up to a minute). Before the policies are first read it asks nothing
  // more: that first read comes after it.
  const hup: { reload?: () => void } = {};
  const onHup = () => hup.reload?.();
  process.on('SIGHUP', onHup);
  try {
    await ensurePrivateDir(o.stateDir);
    await assertNoOtherAgent(o.stateDir);
    // A `ct host` command acting meanwhile holds it for a moment: waited for, up to a minute.
    const lock = await lockStateDir(o.stateDir, 'agent', { waitForCommandMs: 60_000 });
    try {
      return await runLocked(o, io, hup);
    } finally {
      await lock.release();
    }
  } finally {
    process.off('SIGHUP', onHup);
  }
}

async function runLocked(o: HostCommandOptions, io: Io, hup: { reload?: () => void }): Promise<number> {
  const store = parseTrustStore(readFileSync(o.trustStore, 'utf8'), o.trustStore);
  const trust: TrustMaterial = trustMaterial(store, o.trustedRoot ? await loadTrustedRootFile(o.trustedRoot) : undefined);
  // Read in a child: a read that hangs (a FIFO, a gone NFS server) is killed when the agent ends,
  // on an error or after its stop, instead of keeping the process up (policy-reader.ts).
  const reader = new ChildPolicyReader();
  try {
    return await runWithPolicies(o, io, hup, trust, new PolicyStore([resolve(o.policies)], reader.read));
  } finally {
    reader.close();
  }
}

async function runWithPolicies(o: HostCommandOptions, io: Io, hup: { reload?: () => void }, trust: TrustMaterial, policies: PolicyStore): Promise<number> {
  // Read again on SIGHUP and before each assignment is judged: an edited policy needs no restart.
  const refresh = new PolicyRefresh(policies, { source: resolve(o.policies), log: (line) => io.err(line) });
  // From here a SIGHUP reads them again (after a read in flight: refresh.reload()).
  hup.reload = () => void refresh.reload();
  // Waited for 5 s at most (a hung directory does not hang the start): past that every assignment
  // is refused (NO_POLICY) until the load ends.
  await refresh.firstLoad();
  const facts = await collectFacts();
  // Bridge networking needs root (netavark makes bridges and firewall rules); rootless agents run network = "none".
  const network = process.getuid?.() === 0
    ? new NetworkManager({
      stateDir: o.stateDir, subnetBase: o.networkPool, bridgePrefix: o.bridgePrefix,
      paths: o.netavarkDir ? await findNetavark([o.netavarkDir]) : undefined,
    })
    : undefined;
  // `ct host` commands on this machine set suspended networks up again the way the agent does.
  if (network) await saveNetworkSettings(o.stateDir, { subnetBase: o.networkPool, bridgePrefix: o.bridgePrefix, netavarkDir: o.netavarkDir });
  // A missing conntrack or ebtables-restore is told now, not first at a bridge start (which refuses, HOST_TOOL_MISSING).
  await network?.checkTools().catch((e: Error) => io.err(`bridge networking: ${e.message}: containers with network = "bridge" will not start`));
  const { runtime, monitors, alerts } = await openAgentRuntime({ stateDir: o.stateDir, facts, network, logLimits: o.logLimits, log: (line) => io.err(line) });
  // A container whose anti-spoofing guard recover() cannot repair is reported, not fatal (manager.ts repairGuards()).
  network?.onAlert((container, code, detail) => {
    io.err(detail);
    alerts.note('host.network', detail, { container, code });
  });
  // What the agent says it recovered is told to the server too (host.alert in its audit log).
  const recoveredLine = (line: string) => {
    io.out(line);
    alerts.note('host.recovery', line);
  };
  const recovered = await runtime.recover();
  for (const c of recovered.changed) recoveredLine(`recovered ${c.id}: ${c.from} → ${c.to}`);
  const runner = new LocalRunner({ stateDir: o.stateDir, trust: () => trust, policies, refreshPolicies: () => refresh.beforeJudge(), facts: async () => facts, runtime, environment: o.environment, network });
  // A replace the previous agent was killed in ends as it would have: one container serving the app,
  // and a new bundle that was still being health-checked the app only once its check passes. Those
  // checks are resumed in the background (they may take as long as the bundle's manifest allows):
  // the agent connects and serves meanwhile.
  const recovery = await runner.startRecovery();
  for (const line of recovery.now) recoveredLine(`recovered replace ${line}`);
  // Containers that ran on while no agent did are watched again from now on.
  await monitors.attachRunning();
  // `ct host stop|start|…` on this machine go through the runner's turn (host/agent/control.ts);
  // it also refuses a second agent on the same state directory.
  const started: { agent?: Agent } = {};
  // A failed start (no enrolment, server refused) must not leave the socket holding the process up,
  // nor the resumed checks acting on the directory once its lock is released: they are stopped.
  const control = await serveRunnerControl(o.stateDir, runner, () => void started.agent?.resync()).catch(async (e: unknown) => {
    await runner.close();
    await monitors.close();
    throw e;
  });
  const agent = started.agent = await startHostAgent(o, io, runner, facts).catch(async (e: unknown) => {
    await control.close();
    await runner.close();
    await monitors.close();
    throw e;
  });
  alerts.attach((event) => agent.alert(event));
  io.out(`host ${o.name} (${agent.hostId}) connected to ${o.server}; state in ${o.stateDir}`);
  let stopping = false;
  void recovery.later.then((lines) => {
    for (const line of lines) recoveredLine(`recovered replace ${line}`);
    if (lines.length > 0 && !stopping) void agent.resync();
  });
  const watch = watchContainers(runtime, runner, () => agent.resync(), { log: (line) => recoveredLine(`recovered replace ${line}`), stopping: () => stopping, monitors, alerts });
  // Until a signal, or the server's signed word that this host is removed (agent.ended): then the
  // agent ends as it does on a signal, its containers left running, and `ct host run` fails with
  // that code and what to do (enrol again), rather than retrying for ever against a closed door.
  const refused = await new Promise<Awaited<typeof agent.ended> | undefined>((r) => {
    const signalled = () => r(undefined);
    process.once('SIGINT', signalled);
    process.once('SIGTERM', signalled);
    void agent.ended.then((e) => {
      process.off('SIGINT', signalled);
      process.off('SIGTERM', signalled);
      r(e);
    });
  });
  stopping = true;
  clearInterval(watch);
  await control.close();
  await agent.stop();
  // A deploy or a recovered replace's ending in progress finishes before the stores close under it;
  // endings not begun are left (with their records) to the next start.
  await runner.close();
  await monitors.close();
  runtime.close();
  network?.close();
  if (refused) throw refused;
  return 0;
}

/** The agent of `ct host run`: the previous agent's leftovers torn down, then enrolled and connected. */
async function startHostAgent(o: HostCommandOptions, io: Io, runner: LocalRunner, facts: HostFacts): Promise<Agent> {
  // A setup the previous agent was killed in, or a network whose container is gone, is torn down now.
  await runner.inventory();
  return startAgent({
    serverUrl: o.server,
    stateDir: o.stateDir,
    name: o.name,
    enrollToken: o.enrollToken,
    facts: async () => facts,
    runner,
    inventory: () => runner.inventory(),
    logs: (c, n) => runner.logs(c, n),
    logLines: (c, lo) => runner.logLines(c, lo),
    action: (c, req) => runner.action(c, req),
    stopDeployment: (d) => runner.stopDeployment(d),
    log: (m, extra) => io.err(`${m}${extra ? ` ${JSON.stringify(extra)}` : ''}`),
    handshakeMs: o.handshakeMs,
    pingMs: o.pingMs,
    unknownGraceMs: o.unknownGraceMs,
  });
}

/**
 * State changes (an app exiting, with its exit code) reach the server within seconds rather than at
 * the next 30 s inventory: every few seconds the runner reconciles the containers with runc and the
 * supervisors' exit files (the runtime records each change), and any new change sends the inventory now.
 */
export function watchContainers(
  runtime: RuncRuntime, runner: LocalRunner, onChange: () => Promise<void>,
  o: { everyMs?: number; log?: (line: string) => void; stopping?: () => boolean; monitors?: ContainerMonitors; alerts?: HostAlerts } = {},
): NodeJS.Timeout {
  const everyMs = o.everyMs ?? 2000;
  let last = runtime.store.changes().at(-1)?.seq ?? 0;
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    void (async () => {
      await runner.inventory();
      await runner.applyRestartPolicy();
      // Monitors of containers that ended go; counts of alerts held back are sent.
      await o.monitors?.sweep();
      o.alerts?.tick();
      // A replace whose ending failed (its record kept) is tried again, with growing delays.
      const retried = await runner.retryUnfinished();
      for (const line of retried) o.log?.(line);
      if (retried.length > 0 && !o.stopping?.()) await onChange();
      const fresh = runtime.store.changes(last);
      if (fresh.length > 0) {
        last = fresh[fresh.length - 1].seq;
        await onChange();
      }
    })()
      .catch(() => undefined)
      .finally(() => (busy = false));
  }, everyMs);
  timer.unref();
  return timer;
}
