import { randomBytes } from 'node:crypto';
import { access, mkdir, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { constants as osConstants } from 'node:os';
import { CtError } from '../../src/core/errors.js';
import { exitCodeFor } from '../../src/core/codes.js';
import { openCtpToVerify } from '../../src/bundle/read.js';
import type { CtpArchive } from '../../src/bundle/archive.js';
import { verifyCtpArchive, type CtpVerifyOptions } from '../../src/verify/ctp/index.js';
import type { VerificationReport } from '../../src/verify/report.js';
import { PolicyStore } from '../../src/policy/store.js';
import { bundleFactsFromArchive } from '../../src/policy/bundle-facts.js';
import type { PolicySet } from '../../src/policy/policy-set.js';
import { withPolicyKeyless } from '../../src/policy/keyless-trust.js';
import type { PublishedPort } from '../../src/protocol/ports.js';
import { collectFacts } from '../facts.js';
import { checkId, RuncRuntime } from '../runtime/runc.js';
import type { LogLimits } from '../runtime/supervisor.js';
import { NetworkManager, findNetavark } from '../network/index.js';
import { attachNetwork, checkNetworkAsk } from '../agent/network-hook.js';
import { runtimeGrants } from '../agent/grants.js';
import { judge, unpackAndPlan } from '../agent/prepare.js';
import type { RuntimeGrants } from '../enforce/types.js';
import { followLogs } from '../logs/follow.js';
import { ContainerMonitors } from '../monitor/containers.js';
import { ensurePrivateDir } from '../runtime/private-dir.js';
import { saveNetworkSettings } from '../network/settings.js';
import { claimName, claimState, type ClaimState } from './claim.js';
import { recordRunStopGrace } from '../lifecycle/stop-grace.js';
import { checkPublishAddresses } from '../network/publish-address.js';

export interface RunBundleOptions {
  bundle: string;
  verify: CtpVerifyOptions;
  ports: PublishedPort[];
  /** Gatekeeper policy directory judging the bundle (and granting its runtime permissions) as a host would. */
  policies?: string;
  /** The environment the policies are judged for, and the bridge network's name. */
  environment: string;
  /** Container name (default run-<bundle name>-<random>). */
  name?: string;
  stateDir: string;
  networkPool: string;
  bridgePrefix: string;
  netavarkDir?: string;
  logLimits?: LogLimits;
}

export interface RunIo {
  /** Messages of ct itself (stderr): the app's stdout stays the app's. */
  err(t: string): void;
  stdout(chunk: string): void;
  stderr(chunk: string): void;
  /** Shows the verification report (how `ct verify` prints it). */
  report(r: VerificationReport): void;
  /** Registers what to do on SIGINT/SIGTERM; returns the unregistration. */
  onSignal(handler: (signal: NodeJS.Signals) => void): () => void;
}

/**
 * Grants when no policy directory is given: the defaults a host applies when a policy is silent
 * (no root, no extra capability, seccomp and AppArmor wherever the bundle or the host has them),
 * the ports the user publishes with -p, and egress to anywhere (the user's own machine).
 */
function localGrants(ports: readonly PublishedPort[]): RuntimeGrants {
  return {
    network: {
      publish: ports.length ? [ports.map((p) => ({ ports: { from: p.host, to: p.host }, addresses: [p.address], protocols: [p.protocol] }))] : [],
      egress: 'any',
    },
  };
}

/**
 * `ct run BUNDLE.ctp`: the local twin of `docker run` for verified bundles. The archive is
 * verified (as `ct verify` with the same options) and, if a policy directory is given, judged as a
 * host judges it; a bundle that fails either never reaches runc. Then it runs in the foreground
 * under the host's enforcement (the same OCI config builder, seccomp, AppArmor where present,
 * cgroup limits, bridge network with published ports through host/network, the bundle's monitor
 * rules when the host can trace), its stdout and stderr streamed to ours, until it exits (its exit
 * code is ours) or we get SIGINT/SIGTERM (it is stopped with its grace period; a second signal
 * kills it). Its container, network and root filesystem are removed at the end.
 */
class Interrupted extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(signal);
  }
}

export async function runBundle(o: RunBundleOptions, io: RunIo): Promise<number> {
  // The name is a path under the state directory (rootfs/<name>, removed recursively at the end):
  // checked before anything, and never an agent app's id (`ct host rm` would take it for one).
  if (o.name !== undefined) {
    // `ct-` is the host agent's: its apps' ids, their root filesystems (<id>-<generation>) and the
    // runc ids of side-by-side replaces (<id>.<suffix>) all start so.
    if (o.name.startsWith('ct-')) throw new CtError('USAGE', `--name ${JSON.stringify(o.name)}: names starting with ct- are the host agent's (its apps' containers); choose another`, { name: o.name });
    try {
      checkId(o.name);
    } catch {
      throw new CtError('USAGE', `--name ${JSON.stringify(o.name)}: a container name is 1 to 64 of A-Z a-z 0-9 _ . - and starts with a letter or digit`, { name: o.name });
    }
  }
  let archive: CtpArchive;
  try {
    archive = await openCtpToVerify(o.bundle);
  } catch (e) {
    if (!(e instanceof CtError)) throw e;
    io.err(`REJECTED: ${o.bundle} [${e.code}]\n  reason:  ${e.message}`);
    return exitCodeFor(e.code);
  }
  // Loaded before verifying: as on a host, their keyless signers are the Sigstore identities that
  // count (a --certificate-identity given on the command line wins).
  let set: PolicySet | undefined;
  if (o.policies) {
    const store = new PolicyStore([resolve(o.policies)]);
    const loaded = await store.reload();
    if (!loaded.ok || !store.current) {
      // A path that cannot be read is the operator's to fix (IO_ERROR, as --policy /nope.json), not a
      // policy that denies: NO_POLICY (exit 4) read as a policy decision.
      const code = loaded.error?.code === 'IO_ERROR' ? 'IO_ERROR' : 'NO_POLICY';
      throw new CtError(code, `policies in ${o.policies} failed to load: ${loaded.error?.message ?? 'unknown error'}`, { path: o.policies });
    }
    set = store.current;
  }
  const report = await verifyCtpArchive(archive, { ...o.verify, trust: withPolicyKeyless(o.verify.trust, set) });
  io.report(report);
  if (report.decision !== 'ALLOW') return exitCodeFor(report.code ?? 'USAGE');

  const facts = await collectFacts();
  const manifest = bundleFactsFromArchive(archive, o.bundle);
  let grants: RuntimeGrants;
  if (set) {
    const decision = judge(set, report, manifest, facts, o.environment);
    if (!decision.allow) {
      const v = decision.violations[0];
      io.err(`DENIED by policy in environment ${o.environment}: ${v ? `${v.policy}/${v.rule} [${v.code}] ${v.message}` : 'denied'}`);
      return exitCodeFor(v?.code ?? 'POLICY_VIOLATION');
    }
    grants = runtimeGrants(set, decision);
  } else {
    grants = localGrants(o.ports);
  }

  await ensurePrivateDir(o.stateDir);
  // A host agent's state directory is the agent's: its containers, records and root filesystems.
  if (await access(join(o.stateDir, 'enrolment.json')).then(() => true, () => false)) {
    throw new CtError('USAGE', `the state directory ${o.stateDir} is a host agent's (it holds enrolment.json): choose another with --state-dir`, { stateDir: o.stateDir });
  }
  const runtimeAsk = archive.manifest.runtime;
  const bridge = runtimeAsk?.network === 'bridge';
  const network = bridge && process.getuid?.() === 0
    ? new NetworkManager({ stateDir: o.stateDir, subnetBase: o.networkPool, bridgePrefix: o.bridgePrefix, paths: o.netavarkDir ? await findNetavark([o.netavarkDir]) : undefined })
    : undefined;
  let runtime: RuncRuntime | undefined;
  const id = o.name ?? `run-${archive.manifest.name.replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 40)}-${randomBytes(3).toString('hex')}`;
  const rootfs = join(o.stateDir, 'rootfs', id);
  const claim = join(o.stateDir, 'run-names', id);
  let created = false;
  let claimed = false;
  let monitors: ContainerMonitors | undefined;
  // SIGINT/SIGTERM before the app starts (a large unpack takes seconds): the step in hand ends,
  // then everything made so far is removed and the signal's exit status returned. Without this,
  // Node's default handler ended the process with the clean-up not run.
  let interrupted: NodeJS.Signals | undefined;
  const early = io.onSignal((signal) => {
    if (!interrupted) {
      interrupted = signal;
      io.err(`${signal}: stopping ${id} once the step in hand ends, removing what was made; again to quit at once (leaving it)`);
      return;
    }
    // A second signal: a step that hangs (netavark, a huge unpack) must not trap the user.
    early();
    process.kill(process.pid, signal);
  });
  const stopIfInterrupted = () => {
    if (interrupted) throw new Interrupted(interrupted);
  };
  try {
    checkNetworkAsk(runtimeAsk, o.ports, grants, network);
    // Interactive and on one machine: an address it does not have is refused (the agent says it instead).
    checkPublishAddresses(o.ports);
    runtime = await RuncRuntime.open({ stateDir: o.stateDir, unifiedCgroupMount: facts.cgroup.unifiedMount, logLimits: o.logLimits });
    const refuseLive = (held: ClaimState) => {
      if (held.state === 'alive') throw new CtError('USAGE', `a \`ct run\` named ${id} (pid ${held.pid}) is starting or running here; nothing was done`, { id });
    };
    // A live holder first: its container is its own, not one for `ct host rm`.
    refuseLive(await claimState(claim));
    const existing = runtime.store.get(id);
    if (existing && existing.status !== 'removed') throw new CtError('USAGE', `a container named ${id} is here already (${existing.status}, in ${o.stateDir}): \`ct host rm ${id} --state-dir ${o.stateDir}\` removes it`, { id });
    // The name is claimed before anything of it is made, by a directory under run-names/ that only
    // this run creates and removes (never deleted mid-run, unlike rootfs/<name>, which the unpack
    // replaces): a second `ct run` of the name is refused and touches nothing of the first one's.
    // The claim names its owner, so that a refusal can say whether that run lives.
    await mkdir(dirname(claim), { recursive: true, mode: 0o700 });
    if (!(await claimName(claim))) {
      const held = await claimState(claim);
      refuseLive(held);
      if (held.state === 'gone') throw new CtError('USAGE', `a \`ct run\` named ${id} was killed before it could clean up: \`ct host rm ${id} --state-dir ${o.stateDir}\` clears what it left; nothing was done`, { id });
      throw new CtError('USAGE', `a \`ct run\` named ${id} is starting or running here, or one was killed: remove ${claim} and ${rootfs} (when no \`ct run\` of that name runs); nothing was done`, { id });
    }
    claimed = true;
    // `ct host stop|restart` of this container use the manifest's grace too (they read it there).
    if (runtimeAsk?.stop_grace_period !== undefined) await recordRunStopGrace(claim, runtimeAsk.stop_grace_period);
    stopIfInterrupted();
    const plan = await unpackAndPlan(archive, { id, dir: rootfs, app: { name: archive.manifest.name, imageDigest: archive.manifest.image_digest }, grants, manifest, cgroupsPath: runtime.cgroupsPathFor(id) }, facts);
    stopIfInterrupted();
    // `ct host rm/stop/start` on this state directory act on this network with the same settings.
    if (network) await saveNetworkSettings(o.stateDir, { subnetBase: o.networkPool, bridgePrefix: o.bridgePrefix, netavarkDir: o.netavarkDir });
    if (bridge) await attachNetwork(network!, plan.config, { containerId: id, environment: o.environment, app: archive.manifest.name, ports: o.ports, egress: grants.network?.egress ?? 'none' });
    await runtime.create(id, plan.config, { appName: archive.manifest.name, imageDigest: archive.manifest.image_digest });
    created = true;
    // Before the first instruction of the app: the monitor watches its cgroup from the start (a
    // policy that requires it and a host that cannot: refused before, HOST_CANNOT_ENFORCE).
    monitors = new ContainerMonitors({
      runtime, canTrace: facts.ebpf.usable, log: (line) => io.err(line),
      // comm is the app's choice: quoted, so that it cannot write terminal escapes or fake lines.
      onEvent: (_c, e) => io.err(`monitor: ${e.severity} ${e.rule}: ${JSON.stringify(e.comm)} ${e.syscall} ${JSON.stringify(e.detail)}`),
    });
    await monitors.beforeStart(id);
    stopIfInterrupted();
    early();
    const rt = runtime;
    let stopping = 0;
    // A signal while the container is being started is acted on once start() returns: a stop of a
    // container still `created` does nothing, and ct run then followed the app it had been told to stop.
    let started = false;
    const act = () => {
      if (stopping === 1) void rt.stop(id, (runtimeAsk?.stop_grace_period ?? 10) * 1000).catch(() => undefined);
      else if (stopping > 1) void rt.kill(id, 'KILL').catch(() => undefined);
    };
    const off = io.onSignal((signal) => {
      stopping++;
      if (stopping === 1) io.err(`${signal}: stopping ${id} (grace ${runtimeAsk?.stop_grace_period ?? 10} s; again to kill)`);
      if (started) act();
    });
    try {
      await rt.start(id);
      started = true;
      act();
      const published = o.ports.map((p) => `${p.address}:${p.host}->${p.container}/${p.protocol}`).join(', ');
      io.err(`running ${id}${published ? ` (${published})` : ''}; Ctrl-C stops it`);
      await followLogs(rt.logDir(id), (e) => (e.stream === 'stdout' ? io.stdout(`${e.text}\n`) : io.stderr(`${e.text}\n`)), {
        ended: async () => (await rt.state(id)).status === 'stopped',
        intervalMs: 100,
      });
    } finally {
      off();
    }
    const rec = await rt.state(id);
    if (rec.exitReason === 'OOM_KILLED') io.err(`${id} was killed by the kernel for exceeding its memory limit [OOM_KILLED]`);
    return rec.exitCode ?? 125;
  } catch (e) {
    if (!(e instanceof Interrupted)) throw e;
    io.err(`${e.signal}: stopped before ${id} started`);
    return 128 + (osConstants.signals[e.signal] ?? 0);
  } finally {
    early();
    // The clean-up runs to its end (the claim is removed last): a signal meanwhile is only noted.
    const cleaning = io.onSignal((signal) => io.err(`${signal}: removing what ${id} made first`));
    await monitors?.close().catch(() => undefined);
    if (runtime && created) {
      await runtime.delete(id, { force: true, purge: true }).catch(() => undefined);
      runtime.store.forget(id);
    }
    if (claimed) {
      await network?.detach(id).catch(() => undefined);
      await rm(rootfs, { recursive: true, force: true });
      await rm(claim, { recursive: true, force: true });
    }
    cleaning();
    runtime?.close();
    network?.close();
  }
}
