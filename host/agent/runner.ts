import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CtError } from '../../src/core/errors.js';
import { mkdirDurable, writeFileAtomic } from '../../src/core/fs.js';
import type { CtpArchive } from '../../src/bundle/archive.js';
import { verifyCtpArchive } from '../../src/verify/ctp/index.js';
import type { TrustMaterial } from '../../src/verify/report.js';
import { withPolicyKeyless } from '../../src/policy/keyless-trust.js';
import { VerificationCache } from '../../src/verify/cache.js';
import type { PolicyStore } from '../../src/policy/store.js';
import { bundleFactsFromArchive } from '../../src/policy/bundle-facts.js';
import { containerIdFor } from '../../src/protocol/container-id.js';
import type { Assignment, ContainerState, HostFacts, InventoryItem } from '../../src/protocol/messages.js';
import type { PublishedPort } from '../../src/protocol/ports.js';
import { MAX_LOG_LINES, type LogLine } from '../../src/protocol/logs.js';
import { judge, unpackAndPlan } from './prepare.js';
import { OpenedBundles } from './opened-bundles.js';
import { unpackThread } from '../../src/bundle/unpack-thread/index.js';
import { launcher } from '../runtime/launcher.js';
import type { RuncRuntime } from '../runtime/runc.js';
import type { AssignmentRunner } from './agent.js';
import { runtimeGrants } from './grants.js';
import { attachNetwork, checkNetworkAsk, networkNote } from './network-hook.js';
import { publishAddressNote } from '../network/publish-address.js';
import type { NetworkManager } from '../network/index.js';
import { restorePrevious, rootfsOf, savePrevious, type Previous } from '../lifecycle/replace.js';
import { dropReplaceRecord, hasReplaceRecord, replaceRecordIds, replaceRecordPath, replaceToEnd, saveReplaceRecord } from '../lifecycle/replace-record.js';
import { leftInPlace } from './replace-recovery.js';
import { recoveryFailed, type LeftReplace } from '../lifecycle/left-replace.js';
import { candidateId, leftSideBySide, replaceSideBySide } from '../lifecycle/side-by-side.js';
import { performAction, type ActionRequest } from '../lifecycle/actions.js';
import { restartDue } from '../lifecycle/restart-policy.js';
import { removeAppRootfs } from '../lifecycle/rootfs-dirs.js';
import { waitHealthy } from '../health/gate.js';
import type { ContainerRecord } from '../runtime/state.js';
import { verifiedEnvironments } from '../../src/attest/vsa.js';

export interface LocalRunnerOptions {
  stateDir: string;
  trust: () => TrustMaterial | undefined;
  policies: PolicyStore;
  /** Runs before each assignment is judged: the agent reads its policies again (policy-refresh.ts). */
  refreshPolicies?: () => Promise<void>;
  facts: () => Promise<HostFacts>;
  runtime: RuncRuntime;
  /**
   * The environment this host serves (`ct host run --environment`). When set, assignments for
   * another environment are refused and policies are judged for this one: a server that is wrong
   * or compromised cannot make a production host run under a development policy.
   */
  environment?: string;
  /** Bridge networking (host/network); absent: `network = "bridge"` is refused (rootless agents). */
  network?: NetworkManager;
  /**
   * Reports of bundles this host already verified, keyed like the server's cache (bundle digest,
   * trust store and trusted root digests, policy digest, mode): a redeploy or a retried assignment
   * of the same bytes is not verified again; a changed trust store or policy set is another key,
   * and a revocation empties it. Default: 256 entries, 5 minutes.
   */
  verificationCache?: VerificationCache;
  /**
   * Bundles already read and hashed, by digest, used while the file is the very one that was read
   * (opened-bundles.ts): a redeploy of the same bundle does not hash the whole file again.
   */
  openedBundles?: OpenedBundles;
  /**
   * A zero-loss replace (host/lifecycle/side-by-side.ts) waits this long between moving the ports
   * to the new container and SIGTERM to the old one, for requests in flight, and then until the
   * connections the old one had are over (conntrack), at most maxDrainMs. Defaults 500 ms, 10 s.
   */
  drainMs?: number;
  maxDrainMs?: number;
}

/** A kept replace record is tried again after 15 s, then after twice as long each time, at most 10 min. */
const RETRY_FIRST_MS = 15_000;
const RETRY_MAX_MS = 600_000;

type Outcome = { state: ContainerState; code?: string; message?: string; exitCode?: number | null };
const refused = (code: string, message: string): Outcome => ({ state: 'refused', code, message });

/**
 * Runs an assignment on this host, trusting nothing the server says: the bundle bytes are checked
 * against the assigned digest (hashed when this host read that file; opened-bundles.ts), verified again with this host's own trust store, judged again by
 * this host's policies with its own facts, and unpacked from the very archive that was verified
 * (applyLayers re-hashes every layer as it extracts it). Only then does runc see it.
 */
export class LocalRunner implements AssignmentRunner {
  /**
   * Runs and reconciliations take turns: a reconciliation (runtime.list) racing a replacement could
   * write `stopped` over the `removed` of the container being replaced, and the new one would then
   * fail to be created.
   */
  private turn: Promise<unknown> = Promise.resolve();

  /** The container a deploy is replacing right now: lifecycle actions on it are refused (CONTAINER_BUSY). */
  private replacing?: string;

  /** Containers a replace left by an earlier agent still acts on (startRecovery): until it has ended. */
  private readonly recovering = new Map<string, Promise<void>>();

  private closing = false;
  /** When each app with a kept replace record is retried next, and how often it has failed. */
  private readonly retries = new Map<string, { failures: number; at: number; parked?: true }>();

  /** Resumed checks in progress, and the abort that stops them at close(). */
  private readonly checks = new Set<Promise<unknown>>();
  /** Aborted by close(): resumed checks stop probing (their endings are left to the next start). */
  private readonly stopped = new AbortController();

  private readonly verified: VerificationCache;
  private readonly opened: OpenedBundles;

  constructor(private readonly opts: LocalRunnerOptions) {
    this.verified = opts.verificationCache ?? new VerificationCache({ maxEntries: 256 });
    this.opened = opts.openedBundles ?? new OpenedBundles();
    // The unpack thread and the supervisor launcher start now, not during the first deploy.
    unpackThread.warm();
    launcher.warm();
  }

  /**
   * A lifecycle action (stop, start, restart, kill, pause, resume, remove) from the channel or
   * `ct host`. Refused while a deploy replaces that container: pausing or stopping what is being
   * swapped would leave neither version in a known state.
   */
  async action(container: string, req: ActionRequest, o: { deadline?: number } = {}): Promise<ContainerRecord> {
    if (this.replacing === container) throw new CtError('CONTAINER_BUSY', `a deploy is replacing ${container}; try again when it has ended`, { container });
    if (this.recovering.has(container)) throw new CtError('CONTAINER_BUSY', `${container} is in a replace the previous agent was killed in, whose health check is being resumed; try again when it has ended`, { container });
    return this.exclusive(async () => {
      // A caller that stopped waiting (`ct host` gives up after a while) must not see its action done late.
      if (o.deadline !== undefined && Date.now() > o.deadline) throw new CtError('CONTAINER_BUSY', `the agent was busy (deploys, other actions) until after the request gave up; nothing was done to ${container}`, { container });
      // A replace whose ending failed is retried (retryUnfinished); removing the app ends it for good.
      if (req.action !== 'remove') await this.refuseUnfinished(container);
      const grace = await this.assignedRuntime(container).then((r) => r?.stop_grace_period);
      const rec = await performAction(this.opts.runtime, container, req, grace === undefined ? undefined : grace * 1000);
      if (req.action === 'remove') {
        await rm(this.assignedPath(container), { force: true });
        // A replace record left for the next start (a finish that failed) must not bring it back.
        await dropReplaceRecord(this.opts.stateDir, container);
        // Nor may its root filesystems (this deploy's and any an unfinished replace left) stay. The
        // app is gone once its container is: one that cannot be removed (EBUSY) stays on disk until
        // a deploy of the same app ends (which removes them) rather than failing a remove already done.
        await removeAppRootfs(this.opts.stateDir, container).catch(() => undefined);
      }
      return rec;
    });
  }

  /**
   * CONTAINER_BUSY for an app whose replace ended with its record kept: stopping or starting either
   * version would be undone or misread by that ending. Not for a damaged record: the container is
   * left to the operator as it is.
   */
  private async refuseUnfinished(container: string): Promise<void> {
    if (!(await replaceToEnd(this.opts.stateDir, container))) return;
    const r = this.retries.get(container);
    const when = !r ? 'at its next reconciliations'
      : `again in ${Math.max(1, Math.ceil((r.at - Date.now()) / 1000))} s${r.parked ? ' (while its new bundle runs unchecked, only the next start of the agent can resume the check that ends it)' : ''}`;
    throw new CtError('CONTAINER_BUSY', `${container} is in a replace whose ending failed (${replaceRecordPath(this.opts.stateDir, container)}); the agent tries to end it ${when}; remove the app to end it for good; nothing was done`, { container });
  }

  /**
   * At agent start: a replace an earlier agent was killed in ends as the live one would have. Side
   * by side: one container serving (side-by-side.ts); in place: the new bundle's check resumed, the
   * previous bundle put back unless it passes (replace-recovery.ts). Waits for every check.
   */
  async recoverReplaces(): Promise<string[]> {
    const r = await this.startRecovery();
    return [...r.now, ...(await r.later)];
  }

  /**
   * The same, without holding the agent up: what can be decided at once is done now, in the turn
   * (`now`); a health check to resume runs outside it (a bundle's start period and retries can make
   * it last hours) and `later` has those lines. Meanwhile the agent connects, reports and deploys
   * other apps; the containers a pending replace acts on are held (lifecycle actions refused with
   * CONTAINER_BUSY, no restart policy; the agent holds the app's assignments back until held()
   * resolves), and its ending takes the turn like any deploy. Once the agent is closing (close()), an ending not begun is not begun:
   * its record stays for the next start.
   */
  startRecovery(): Promise<{ now: string[]; later: Promise<string[]> }> {
    return this.exclusive(async () => this.endLeft([...(await leftSideBySide(this.opts.runtime, this.opts.network)), ...(await this.leftInPlace())]));
  }

  /**
   * A replace this agent ended with its record kept (a finish whose assigned record could not be
   * written, a rollback that failed) or an earlier start could not end is tried again, the way the
   * next start would, while the agent runs: at its reconciliations, each app 15 s after its record
   * was first seen, then after twice as long each time (at most 10 min) while it keeps failing. An
   * ending that needs a health check resumed waits for the next start (`parked`: looked at again on
   * the same schedule, said once), and a damaged record for an operator. Meanwhile lifecycle actions on the app but `remove` are refused
   * (action()). Lines as startRecovery's.
   */
  retryUnfinished(now = Date.now()): Promise<string[]> {
    return this.exclusive(async () => {
      if (this.closing) return [];
      const ids = new Set(await replaceRecordIds(this.opts.stateDir));
      // Records gone meanwhile (a deploy or a remove ended them) leave no retry state behind.
      for (const id of this.retries.keys()) if (!ids.has(id)) this.retries.delete(id);
      const due: string[] = [];
      for (const id of ids) {
        if (this.recovering.has(id)) continue;
        const r = this.retries.get(id);
        if (!r) this.retries.set(id, { failures: 0, at: now + RETRY_FIRST_MS });
        else if (r.at <= now) due.push(id);
      }
      if (due.length === 0) return [];
      const left = await this.leftInPlace(new Set(due), true);
      // Live, nothing is left pending (leftInPlace's `live`): every ending is a line. A parked one
      // (a check to resume) is looked at again on the same schedule, since the container may have
      // stopped meanwhile and its ending need no check any more; its line is said once.
      const parked = new Set(left.flatMap((l) => ('parked' in l && l.parked ? [l.id] : [])));
      const lines = left.flatMap((l) => ('line' in l && !(parked.has(l.id) && this.retries.get(l.id)?.parked) ? [l.line] : []));
      for (const id of due) {
        if (!(await hasReplaceRecord(this.opts.stateDir, id))) {
          this.retries.delete(id);
          continue;
        }
        const failures = (this.retries.get(id)?.failures ?? 0) + 1;
        this.retries.set(id, { failures, at: Date.now() + Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** failures), ...(parked.has(id) ? { parked: true as const } : {}) });
      }
      return lines;
    });
  }

  private leftInPlace(only?: ReadonlySet<string>, live = false): Promise<LeftReplace[]> {
    return leftInPlace({
      runtime: this.opts.runtime, network: this.opts.network, stateDir: this.opts.stateDir, assignedPath: (id) => this.assignedPath(id), only, live,
      finish: (id, rootfs, assigned) => this.finishReplace(id, rootfs, assigned),
      fail: (id, rootfs, previous, rec, why, exitReason) => this.failedReplace(id, rootfs, previous, rec, why, exitReason),
      rollBack: (id, rootfs, previous) => this.rollBack(id, rootfs, previous),
    });
  }

  /** Called in the turn: endings decided now are done; resumed checks run outside it, their apps held. */
  private endLeft(left: readonly LeftReplace[]): { now: string[]; later: Promise<string[]> } {
    const now: string[] = [];
    const later: Promise<string>[] = [];
    for (const l of left) {
      if ('line' in l) {
        now.push(l.line);
        continue;
      }
      const check = l.check(this.stopped.signal);
      this.checks.add(check);
      void check.finally(() => this.checks.delete(check)).catch(() => undefined);
      const ending = check
        .then((gate) => this.exclusive(async () => (this.closing ? `${l.id}: the agent stopped before the replace ended; it is resumed at the next start` : l.end(gate))))
        .catch((e: unknown) => recoveryFailed(l.id, e));
      // The hold is released before anything waiting on it runs (an assignment of the app).
      const settled = ending.finally(() => {
        for (const id of l.holds) if (this.recovering.get(id) === held) this.recovering.delete(id);
      });
      const held: Promise<void> = settled.then(() => undefined);
      for (const id of l.holds) this.recovering.set(id, held);
      later.push(settled);
    }
    return { now, later: Promise.all(later) };
  }

  /**
   * The agent is stopping: endings of recovered replaces not begun stay for the next start, and
   * this resolves once the work in its turn (a deploy, an ending) is over, so that the runtime and
   * network it acts through are not closed under it.
   */
  async close(): Promise<void> {
    this.closing = true;
    this.stopped.abort();
    // A probe already running ends within its timeout; then nothing of a check is left to act.
    await Promise.allSettled(this.checks);
    await this.exclusive(async () => undefined);
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.turn.then(fn, fn);
    this.turn = next.catch(() => undefined);
    return next;
  }

  /** The containers, reconciled with runc and their supervisors (recording any change). */
  /** The tail of a container's log (its supervisor writes it); CONTAINER_NOT_FOUND for others. */
  logs(container: string, maxBytes: number): Promise<string> {
    return this.opts.runtime.logs(container, { maxBytes });
  }

  /** The log as lines with their streams and times (the channel's `logs` with or without `since`). */
  async logLines(container: string, o: { maxBytes: number; since?: string }): Promise<{ lines: LogLine[]; cursor?: string }> {
    const page = await this.opts.runtime.logEntries(container, { maxBytes: o.maxBytes, since: o.since, maxLines: MAX_LOG_LINES });
    return { lines: page.entries.map((e) => ({ stream: e.stream, time: e.time, text: e.text })), cursor: page.cursor };
  }

  inventory(): Promise<InventoryItem[]> {
    return this.exclusive(async () => {
      const all = await this.opts.runtime.list();
      // Networks follow the containers (by runc id): a stopped one's is suspended, a removed one's torn down.
      const status = new Map(all.map((c) => [c.runcId, c.status]));
      // The new container of a replace in progress is not the app's yet: the server sees the old one.
      const list = all.filter((c) => !c.replaces);
      await this.opts.network?.recover((id) => {
        const s = status.get(id);
        return s === 'running' || s === 'paused' ? 'running' : s === 'stopped' || s === 'created' ? 'stopped' : 'gone';
      });
      // Suspended: stopped and held while its assignment says so (a `ct host start` releases it).
      const suspended = await this.suspendedIds(list.filter((c) => c.status === 'stopped' && c.held).map((c) => c.id));
      return list.map((c) => ({
        id: c.id, app: c.appName, imageDigest: c.imageDigest, state: c.status, exitCode: c.exitCode, exitReason: c.exitReason, health: c.health, restarts: c.restarts, lastExitCode: c.lastExitCode,
        ...(suspended.has(c.id) ? { suspended: true } : {}),
      }));
    });
  }

  /**
   * The manifest's restart policy (host/lifecycle/restart-policy.ts), applied at each
   * reconciliation: stopped containers that are due are started again (network and all), their
   * restart counted and the exit code of the run that ended kept. Returns the ids restarted.
   */
  applyRestartPolicy(now = Date.now()): Promise<string[]> {
    return this.exclusive(async () => {
      const restarted: string[] = [];
      for (const c of this.opts.runtime.store.list()) {
        if (c.status !== 'stopped' || c.held || c.replaces || this.recovering.has(c.id)) continue;
        if (!restartDue(c, (await this.assignedRuntime(c.id))?.restart, now).due) continue;
        this.opts.runtime.store.update(c.id, { restarts: c.restarts + 1, lastExitCode: c.exitKnown ? c.exitCode : null });
        await this.opts.runtime.restart(c.id).catch(() => undefined);
        restarted.push(c.id);
      }
      return restarted;
    });
  }

  /** Resolves when the app's hold (a recovered replace still being checked) ends; undefined when not held. */
  held(a: Pick<Assignment, 'environment' | 'app'>): Promise<void> | undefined {
    return this.recovering.get(this.containerId(a));
  }

  run(a: Assignment, ctpPath: string): Promise<Outcome> {
    // The agent waits for held() before it runs an assignment of a held app (outside its queue);
    // anything calling while the hold lasts, or once the agent is stopping, is refused.
    const id = this.containerId(a);
    if (this.recovering.has(id)) {
      return Promise.resolve(refused('CONTAINER_BUSY', `${id} is in a replace the previous agent was killed in, whose health check is being resumed; deploy again when it has ended`));
    }
    if (this.closing) return Promise.resolve(refused('CONTAINER_BUSY', 'the agent is stopping'));
    return this.exclusive(async () => {
      this.replacing = id;
      // Whatever record this deploy leaves is its own: retried afresh (a parked one is no longer).
      this.retries.delete(id);
      try {
        return a.suspended ? await this.suspendNow(a, ctpPath) : await this.runNow(a, ctpPath);
      } finally {
        this.replacing = undefined;
      }
    });
  }

  /**
   * Desired state `suspended: true`: the container is stopped (SIGTERM, its grace period, SIGKILL)
   * and held, not removed; its network is suspended (address and ports kept). When it runs another
   * bundle (or none), the assigned one is deployed first like any other (verified, judged, started,
   * health-gated) and then stopped: un-suspending starts a bundle this host has already proved.
   * A later assignment without `suspended` replaces the stopped container and starts it.
   */
  private async suspendNow(a: Assignment, ctpPath: string): Promise<Outcome> {
    const id = this.containerId(a);
    const existing = await this.opts.runtime.state(id).catch(() => undefined);
    if (!existing || (await this.runningBundle(id)) !== `${a.bundleDigest}${portsKey(a.ports ?? [])}`) {
      const out = await this.runNow(a, ctpPath);
      if (out.state !== 'running') return out;
    }
    const grace = (await this.assignedRuntime(id))?.stop_grace_period;
    const rec = await performAction(this.opts.runtime, id, { action: 'stop' }, grace === undefined ? undefined : grace * 1000);
    await this.opts.network?.suspend(rec.runcId);
    const assigned = JSON.parse(await readFile(this.assignedPath(id), 'utf8')) as Assigned;
    await writeFileAtomic(this.assignedPath(id), `${JSON.stringify({ ...assigned, suspended: true, deploymentId: a.deploymentId, generation: a.generation })}\n`, 0o600);
    return { state: rec.status === 'stopped' ? 'suspended' : 'failed', ...(rec.status === 'stopped' ? {} : { code: 'RUNTIME_FAILED', message: `container ${id} is ${rec.status} after its stop` }) };
  }

  /** Containers an assignment suspended (assigned/<id>.json says so), for the inventory. */
  private async suspendedIds(ids: readonly string[]): Promise<Set<string>> {
    const out = new Set<string>();
    for (const id of ids) {
      const rec = await readFile(this.assignedPath(id), 'utf8').then((t) => JSON.parse(t) as Assigned, () => undefined);
      if (rec?.suspended) out.add(id);
    }
    return out;
  }

  /** Which bundle a container was started from (the runtime records the image, not the bundle). */
  private assignedPath(id: string): string {
    return join(this.opts.stateDir, 'assigned', `${id}.json`);
  }

  /**
   * The channel's `stop` for a deployment: stops (and holds) the container that runs it. A stop
   * naming a deployment the container no longer runs (it was replaced since) does nothing.
   */
  async stopDeployment(deploymentId: string): Promise<ContainerRecord | undefined> {
    for (const name of await readdir(join(this.opts.stateDir, 'assigned')).catch(() => [] as string[])) {
      if (!name.endsWith('.json')) continue;
      const id = name.slice(0, -5);
      const rec = await readFile(this.assignedPath(id), 'utf8').then((t) => JSON.parse(t) as Assigned).catch(() => undefined);
      if (rec?.deploymentId === deploymentId) return this.action(id, { action: 'stop' });
    }
    return undefined;
  }

  /** The lifecycle part of the manifest of the bundle a container runs (restart policy, grace, health check). */
  async assignedRuntime(id: string): Promise<Assigned['runtime'] | undefined> {
    try {
      return (JSON.parse(await readFile(this.assignedPath(id), 'utf8')) as Assigned).runtime;
    } catch {
      return undefined;
    }
  }

  private async runningBundle(id: string): Promise<string | undefined> {
    try {
      return (JSON.parse(await readFile(this.assignedPath(id), 'utf8')) as { bundleDigest?: string }).bundleDigest;
    } catch {
      return undefined; // unknown: the assignment is run again rather than assumed
    }
  }

  containerId(a: Pick<Assignment, 'environment' | 'app'>): string {
    return containerIdFor(a.environment, a.app);
  }

  private async runNow(a: Assignment, ctpPath: string): Promise<Outcome> {
    if (this.opts.environment && a.environment !== this.opts.environment) {
      return refused('ENVIRONMENT_MISMATCH', `this host serves ${this.opts.environment}, the assignment is for ${a.environment}`);
    }
    const id = this.containerId(a);
    // What runs now is asked of runc (a child process) while the bundle is hashed and verified;
    // it decides nothing before the checks below have passed.
    const running = this.opts.runtime.state(id).catch(() => undefined);
    let archive: CtpArchive;
    try {
      archive = await this.opened.open(ctpPath, a.bundleDigest);
    } catch (e) {
      return refused((e as CtError).code ?? 'MALFORMED_BUNDLE', (e as Error).message);
    }
    if (archive.bundleDigest !== a.bundleDigest) return refused('DIGEST_MISMATCH', `bundle is ${archive.bundleDigest}, assignment names ${a.bundleDigest}`);
    const store = this.opts.trust();
    if (!store) return refused('UNKNOWN_KEY', 'this host has no trust store: nothing can be verified');
    await this.opts.refreshPolicies?.();
    const set = this.opts.policies.current;
    // This host's own policies name the keyless identities whose Sigstore attestations count.
    const trust = withPolicyKeyless(store, set);
    const report = await verifyCtpArchive(archive, { trust, mode: 'audit', cache: this.verified, ...(set?.digest ? { policyDigest: set.digest } : {}) });
    if (report.decision === 'REJECT') return refused(report.code ?? 'MALFORMED_BUNDLE', report.message ?? 'verification failed');
    if (report.evidence.imageDigest !== a.imageDigest) return refused('SUBJECT_MISMATCH', `image is ${report.evidence.imageDigest}, assignment names ${a.imageDigest}`);

    if (!set) return refused('NO_POLICY', 'this host could not load its policies: failing closed');
    const facts = await this.opts.facts();
    const manifest = bundleFactsFromArchive(archive, ctpPath);
    // requireVerifiedIn: only VSAs that verify with this host's own trust store count, and only
    // for this very image and .ctp (whatever the server says).
    const verifiedIn = verifiedEnvironments((a.vsas ?? []).slice(0, 8).map((v) => Buffer.from(v, 'utf8')), { store: trust.store, imageDigest: a.imageDigest, bundleDigest: archive.bundleDigest }).environments;
    const decision = judge(set, report, manifest, facts, a.environment, verifiedIn);
    if (!decision.allow) {
      const v = decision.violations[0];
      return refused(v?.code ?? 'POLICY_VIOLATION', v ? `${v.policy}/${v.rule}: ${v.message}` : 'denied by policy');
    }

    const ports = a.ports ?? [];
    const grants = runtimeGrants(set, decision);
    try {
      checkNetworkAsk(archive.manifest.runtime, ports, grants, this.opts.network);
    } catch (e) {
      return refused((e as CtError).code, (e as Error).message);
    }
    // Said in the deploy's message (the server's host note), joined as the server joins hosts' notes.
    const note = [ports.length > 0 ? publishAddressNote(ports) : undefined, networkNote(archive.manifest.runtime, a.app)].filter(Boolean).join('; ');
    const started: Outcome = { state: 'running', ...(note ? { message: note } : {}) };

    // Only now may what already runs answer for the assignment: a tampered or unapproved bundle of
    // the same image must be refused, not reported running (a server retrying after a crash still
    // gets `running` without a restart, after this re-verification). And it must be this very
    // bundle: another one of the same image may carry other security files or runtime settings.
    const existing = await running;
    if (existing?.status === 'running' && existing.imageDigest === a.imageDigest && (await this.runningBundle(id)) === `${archive.bundleDigest}${portsKey(ports)}`) {
      return started;
    }

    const dir = join(this.opts.stateDir, 'rootfs', `${id}-${a.generation}`);
    // A running app on a bridge is replaced side by side, without a request lost (the old root
    // filesystem must not be the new one's: the same generation assigned again is replaced in place).
    const beside = existing?.status === 'running' && archive.manifest.runtime?.network === 'bridge' ? this.opts.network?.attachment(existing.runcId) : undefined;
    if (existing && beside && (await rootfsOf(existing)) !== dir) {
      return this.replaceBeside(a, id, existing, dir, { archive, grants, manifest, facts, ports, started });
    }
    // Until the old container is removed, a failure must leave it (and its network) as it was.
    let replacing = false;
    let recorded = false;
    // Once the new bundle is the app's container, its root filesystem is what runs: an error in
    // finishing (the assigned record not written: ENOSPC, EIO) must neither remove it under the
    // running container nor drop the record the next start would finish the replace from.
    let finishing = false;
    // Kept for the next start: that finish, or a rollback that failed (it tries again). Otherwise
    // the record goes whichever way the replace ended, with any an earlier replace of this app left.
    let keepRecord = false;
    const lifecycle = archive.manifest.runtime ?? {};
    const hc = lifecycle.healthcheck;
    const assigned: Assigned = {
      bundleDigest: `${archive.bundleDigest}${portsKey(ports)}`, generation: a.generation, deploymentId: a.deploymentId,
      runtime: { restart: lifecycle.restart, stop_grace_period: lifecycle.stop_grace_period, healthcheck: hc },
    };
    try {
      const plan = await unpackAndPlan(archive, { id, dir, app: { name: a.app, imageDigest: a.imageDigest }, grants, manifest, cgroupsPath: this.opts.runtime.cgroupsPathFor(id) }, facts);
      // What runs now is kept (config and root filesystem) until the new bundle proves healthy.
      // A port another app or a host process holds is refused before the old container is touched.
      if (ports.length > 0) await this.opts.network?.checkPorts(existing?.runcId ?? id, ports);
      const previous = existing ? await savePrevious(existing, this.assignedPath(id), this.opts.network) : undefined;
      // ...and kept on disk too, before the old container goes: an agent killed from here until the
      // replace ends leaves a record the next one resumes the check from (replace-recovery.ts).
      if (previous || hc) {
        // Set first: a save whose directory sync failed has left its record under the name.
        recorded = true;
        await saveReplaceRecord(this.opts.stateDir, { version: 1, id, rootfs: dir, assigned: `${JSON.stringify(assigned)}\n`, healthcheck: hc, previous });
      }
      replacing = true;
      // One runc id per app: the old container stops before the new one starts (a published port
      // could not be held by both anyway); it is put back if the new one fails (restorePrevious).
      if (existing) await this.opts.runtime.delete(id, { force: true }).catch(() => undefined);
      // The replaced container's network (and the host ports it held) goes with it.
      await this.opts.network?.detach(existing?.runcId ?? id);
      await rm(this.assignedPath(id), { force: true });
      let rec: ContainerRecord;
      try {
        if (archive.manifest.runtime?.network === 'bridge') {
          await attachNetwork(this.opts.network!, plan.config, { containerId: id, environment: a.environment, app: a.app, ports, egress: grants.network?.egress ?? 'none' });
        }
        rec = await this.opts.runtime.run(id, plan.config, { appName: a.app, imageDigest: a.imageDigest });
      } catch (e) {
        if (!previous) throw e;
        // The new bundle could not start (a port a host process took meanwhile, netavark, runc):
        // what ran before runs again, and the deploy reports why the new one did not.
        const back = await this.rollBack(id, dir, previous);
        keepRecord = !back.ok;
        return { state: e instanceof CtError ? 'refused' : 'failed', code: e instanceof CtError ? e.code : 'RUNTIME_ERROR', message: `${(e as Error).message}; ${back.text}` };
      }
      const gate = rec.status === 'running' && hc ? await waitHealthy(this.opts.runtime, id, hc) : undefined;
      if (rec.status !== 'running' || gate?.health === 'unhealthy') {
        // The failed container's network rests with it (kept stopped) or is replaced by the old one's.
        if (!previous) await this.opts.network?.suspend(id).catch(() => undefined);
        const failed = await this.failedReplace(id, dir, previous, rec, gate?.detail, gate?.exited?.exitReason ?? rec.exitReason);
        keepRecord = failed.rollbackFailed;
        return failed.out;
      }
      finishing = true;
      await this.finishReplace(id, dir, `${JSON.stringify(assigned)}\n`);
      return started;
    } catch (e) {
      if (finishing) {
        // The record is kept: the agent's next start finishes the replace (replace-recovery.ts: the
        // new container runs, its health says it passed).
        const kept = recorded ? `; ${replaceRecordPath(this.opts.stateDir, id)} is kept and the agent's next start finishes it` : '';
        keepRecord = recorded;
        return { state: 'failed', code: 'IO_ERROR', message: `the new bundle runs${hc ? ' and passed its check' : ''}, but finishing the replace failed: ${(e as Error).message}${kept}` };
      }
      await rm(dir, { recursive: true, force: true });
      // Nothing runs half-networked: a container that could not start leaves no network behind.
      if (replacing) await this.opts.network?.detach(id).catch(() => undefined);
      if (e instanceof CtError) return refused(e.code, e.message);
      return { state: 'failed', code: 'RUNTIME_ERROR', message: (e as Error).message };
    } finally {
      // Whichever way it ended (new bundle healthy, old one back, or an error), nothing is left to resume.
      // A record an earlier replace kept (a rollback to retry) stays when this one failed before
      // touching anything.
      if (!keepRecord && (recorded || replacing)) await dropReplaceRecord(this.opts.stateDir, id).catch(() => undefined);
    }
  }

  /**
   * The new bundle is the app: its assigned record written, the replace record dropped, the root
   * filesystems it replaced removed, in that order and each durable before the next: a power loss
   * between them leaves either the record to finish from (the old root filesystem still there to go
   * back to) or an orphaned old root filesystem (the next replace removes it), never a record whose
   * way back is gone.
   */
  private async finishReplace(id: string, dir: string, assigned: string): Promise<void> {
    await mkdirDurable(join(this.opts.stateDir, 'assigned'), 0o700);
    await writeFileAtomic(this.assignedPath(id), assigned, 0o600, { durable: true });
    await dropReplaceRecord(this.opts.stateDir, id);
    // Left for the next replace of this app when it fails: the app is what it should be.
    await removeAppRootfs(this.opts.stateDir, id, dir).catch(() => undefined);
  }

  /**
   * The zero-loss replace (host/lifecycle/side-by-side.ts): the new bundle beside the old one, the
   * ports switched once it is healthy. Whatever fails, the old one keeps serving untouched.
   */
  private async replaceBeside(
    a: Assignment, id: string, existing: ContainerRecord, dir: string,
    o: { archive: CtpArchive; grants: ReturnType<typeof runtimeGrants>; manifest: ReturnType<typeof bundleFactsFromArchive>; facts: HostFacts; ports: readonly PublishedPort[]; started: Outcome },
  ): Promise<Outcome> {
    const network = this.opts.network!;
    const candidate = candidateId(id);
    const before = await this.runningBundle(id);
    const kept = 'the previous bundle kept serving';
    const lifecycle = o.archive.manifest.runtime ?? {};
    let result: Awaited<ReturnType<typeof replaceSideBySide>>;
    try {
      const plan = await unpackAndPlan(o.archive, { id: candidate, dir, app: { name: a.app, imageDigest: a.imageDigest }, grants: o.grants, manifest: o.manifest, cgroupsPath: this.opts.runtime.cgroupsPathFor(candidate) }, o.facts);
      if (o.ports.length > 0) await network.checkPorts(existing.runcId, o.ports);
      const grace = (await this.assignedRuntime(id))?.stop_grace_period;
      result = await replaceSideBySide({
        runtime: this.opts.runtime, network, id, candidate, config: plan.config, create: { appName: a.app, imageDigest: a.imageDigest },
        attach: { environment: a.environment, app: a.app, egress: o.grants.network?.egress ?? 'none' }, ports: o.ports, healthcheck: lifecycle.healthcheck,
        drainMs: this.opts.drainMs ?? 500, maxDrainMs: this.opts.maxDrainMs ?? 10_000, graceMs: grace === undefined ? 10_000 : grace * 1000,
      });
    } catch (e) {
      result = { state: 'not-started', error: e };
    }
    if (result.state === 'not-started') {
      await rm(dir, { recursive: true, force: true });
      const e = result.error;
      return { state: e instanceof CtError ? 'refused' : 'failed', code: e instanceof CtError ? e.code : 'RUNTIME_ERROR', message: `${(e as Error).message}; ${kept}` };
    }
    if (result.state === 'unhealthy') {
      await rm(dir, { recursive: true, force: true });
      const { rec, detail, exitReason } = result;
      const code = exitReason === 'OOM_KILLED' ? 'OOM_KILLED' : detail !== undefined ? 'HEALTHCHECK_FAILED' : 'RUNTIME_FAILED';
      const what = detail ?? `container ${rec.status}${rec.exitCode !== null ? ` (exit ${rec.exitCode})` : ''}`;
      return { state: 'failed', code, exitCode: rec.exitCode ?? null, message: `${what}; rolled back to ${before ?? 'the previous bundle'} (running): it kept serving` };
    }
    await mkdir(join(this.opts.stateDir, 'assigned'), { recursive: true, mode: 0o700 });
    const assigned: Assigned = {
      bundleDigest: `${o.archive.bundleDigest}${portsKey(o.ports)}`, generation: a.generation, deploymentId: a.deploymentId,
      runtime: { restart: lifecycle.restart, stop_grace_period: lifecycle.stop_grace_period, healthcheck: lifecycle.healthcheck },
    };
    await writeFileAtomic(this.assignedPath(id), `${JSON.stringify(assigned)}\n`, 0o600);
    // A record an earlier in-place replace of the app kept (its ending failed) is over too: the
    // app is this container now, and the root filesystems the record could go back to go next.
    await dropReplaceRecord(this.opts.stateDir, id);
    await removeAppRootfs(this.opts.stateDir, id, dir);
    return o.started;
  }

  /**
   * The new bundle did not run, or did not become healthy: it is removed and the bundle that ran
   * before is put back (and started again if it ran). The deploy fails with HEALTHCHECK_FAILED
   * (OOM_KILLED when the kernel killed it for its memory limit).
   */
  private async failedReplace(id: string, dir: string, previous: Previous | undefined, rec: ContainerRecord, why: string | undefined, exitReason: string | null): Promise<{ out: Outcome; rollbackFailed: boolean }> {
    const code = exitReason === 'OOM_KILLED' ? 'OOM_KILLED' : why !== undefined ? 'HEALTHCHECK_FAILED' : undefined;
    const what = why ?? `container ${rec.status}${rec.exitCode !== null ? ` (exit ${rec.exitCode})` : ''}`;
    if (!previous) {
      // Nothing to go back to: the failed container is stopped and kept (its logs say why).
      if (why !== undefined) {
        this.opts.runtime.store.update(id, { held: true });
        await this.opts.runtime.stop(id, 1000).catch(() => undefined);
      }
      return { out: { state: 'failed', code, exitCode: rec.exitCode ?? null, message: `${what}; nothing ran before: stopped` }, rollbackFailed: false };
    }
    const back = await this.rollBack(id, dir, previous);
    return { out: { state: 'failed', code: code ?? 'RUNTIME_FAILED', exitCode: rec.exitCode ?? null, message: `${what}; ${back.text}` }, rollbackFailed: !back.ok };
  }

  /** Puts the previous bundle back (container, network, published ports); says how that went. */
  private async rollBack(id: string, dir: string, previous: Previous): Promise<{ ok: boolean; text: string }> {
    try {
      const old = await restorePrevious(this.opts.runtime, id, previous, this.assignedPath(id), dir, this.opts.network);
      return { ok: true, text: `rolled back to ${previous.bundleDigest ?? 'the previous bundle'} (${old.status})` };
    } catch (e) {
      return { ok: false, text: `rolling back failed: ${(e as Error).message}` };
    }
  }
}

/** assigned/<id>.json: which bundle a container runs, and the lifecycle part of its manifest. */
interface Assigned {
  bundleDigest: string;
  generation: number;
  deploymentId?: string;
  runtime?: { restart?: 'never' | 'on-failure' | 'always'; stop_grace_period?: number; healthcheck?: import('../../src/bundle/runtime-extras.js').HealthcheckSpec };
  /** Stopped and held by a `suspended` assignment (rewritten without it when the app runs again). */
  suspended?: true;
}

/** The published ports as part of what runs: the same bundle with other ports is a new deploy. */
function portsKey(ports: readonly PublishedPort[]): string {
  return ports.length ? ` ports=${JSON.stringify(ports)}` : '';
}
