import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CtError } from '../../src/core/errors.js';
import { writeFileAtomic } from '../../src/core/fs.js';
import { openCtp } from '../../src/bundle/read.js';
import { checkOciLayout } from '../../src/bundle/check-layout.js';
import { applyLayers } from '../../src/bundle/apply-layers.js';
import type { CtpArchive } from '../../src/bundle/archive.js';
import { verifyCtpArchive } from '../../src/verify/ctp/index.js';
import type { TrustMaterial } from '../../src/verify/report.js';
import { evaluate } from '../../src/policy/evaluate.js';
import type { PolicyStore } from '../../src/policy/store.js';
import { bundleFactsFromArchive } from '../../src/policy/bundle-facts.js';
import { policyHostFacts } from '../../src/protocol/policy-facts.js';
import { containerIdFor } from '../../src/protocol/container-id.js';
import type { Assignment, ContainerState, HostFacts, InventoryItem } from '../../src/protocol/messages.js';
import type { PublishedPort } from '../../src/protocol/ports.js';
import { buildRuntimePlan } from '../enforce/index.js';
import type { ImageDefaults } from '../enforce/types.js';
import type { RuncRuntime } from '../runtime/runc.js';
import type { AssignmentRunner } from './agent.js';
import { runtimeGrants } from './grants.js';
import { attachNetwork, checkNetworkAsk } from './network-hook.js';
import type { NetworkManager } from '../network/index.js';

export interface LocalRunnerOptions {
  stateDir: string;
  trust: () => TrustMaterial | undefined;
  policies: PolicyStore;
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
}

type Outcome = { state: ContainerState; code?: string; message?: string; exitCode?: number | null };
const refused = (code: string, message: string): Outcome => ({ state: 'refused', code, message });

/**
 * Runs an assignment on this host, trusting nothing the server says: the bundle bytes are checked
 * against the assigned digest, verified again with this host's own trust store, judged again by
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

  constructor(private readonly opts: LocalRunnerOptions) {}

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

  inventory(): Promise<InventoryItem[]> {
    return this.exclusive(async () => {
      const list = await this.opts.runtime.list();
      // Networks follow the containers: a stopped one's is suspended, a removed one's torn down.
      const status = new Map(list.map((c) => [c.id, c.status]));
      await this.opts.network?.recover((id) => {
        const s = status.get(id);
        return s === 'running' || s === 'paused' ? 'running' : s === 'stopped' || s === 'created' ? 'stopped' : 'gone';
      });
      return list.map((c) => ({ id: c.id, app: c.appName, imageDigest: c.imageDigest, state: c.status, exitCode: c.exitCode }));
    });
  }

  run(a: Assignment, ctpPath: string): Promise<Outcome> {
    return this.exclusive(() => this.runNow(a, ctpPath));
  }

  /** Which bundle a container was started from (the runtime records the image, not the bundle). */
  private assignedPath(id: string): string {
    return join(this.opts.stateDir, 'assigned', `${id}.json`);
  }

  private async runningBundle(id: string): Promise<string | undefined> {
    try {
      return (JSON.parse(await readFile(this.assignedPath(id), 'utf8')) as { bundleDigest?: string }).bundleDigest;
    } catch {
      return undefined; // unknown: the assignment is run again rather than assumed
    }
  }

  /** The root filesystems of the containers this one replaced (rootfs/<id>-<generation>). */
  private async removeOtherRootfs(id: string, keep: string): Promise<void> {
    const parent = join(this.opts.stateDir, 'rootfs');
    const mine = new RegExp(`^${id.replace(/[.]/g, '\\.')}-\\d+$`);
    for (const name of await readdir(parent).catch(() => [] as string[])) {
      if (mine.test(name) && join(parent, name) !== keep) await rm(join(parent, name), { recursive: true, force: true });
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
    let archive: CtpArchive;
    try {
      archive = await openCtp(ctpPath);
    } catch (e) {
      return refused((e as CtError).code ?? 'MALFORMED_BUNDLE', (e as Error).message);
    }
    if (archive.bundleDigest !== a.bundleDigest) return refused('DIGEST_MISMATCH', `bundle is ${archive.bundleDigest}, assignment names ${a.bundleDigest}`);
    const trust = this.opts.trust();
    if (!trust) return refused('UNKNOWN_KEY', 'this host has no trust store: nothing can be verified');
    const report = await verifyCtpArchive(archive, { trust, mode: 'audit' });
    if (report.decision === 'REJECT') return refused(report.code ?? 'MALFORMED_BUNDLE', report.message ?? 'verification failed');
    if (report.evidence.imageDigest !== a.imageDigest) return refused('SUBJECT_MISMATCH', `image is ${report.evidence.imageDigest}, assignment names ${a.imageDigest}`);

    const set = this.opts.policies.current;
    if (!set) return refused('NO_POLICY', 'this host could not load its policies: failing closed');
    const facts = await this.opts.facts();
    const manifest = bundleFactsFromArchive(archive, ctpPath);
    const decision = evaluate(set, {
      evidence: report.evidence,
      manifest,
      host: policyHostFacts(facts, a.environment),
      findings: report.findings.filter((f) => f.integrity),
    });
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

    // Only now may what already runs answer for the assignment: a tampered or unapproved bundle of
    // the same image must be refused, not reported running (a server retrying after a crash still
    // gets `running` without a restart, after this re-verification). And it must be this very
    // bundle: another one of the same image may carry other security files or runtime settings.
    const existing = await this.opts.runtime.state(id).catch(() => undefined);
    if (existing?.status === 'running' && existing.imageDigest === a.imageDigest && (await this.runningBundle(id)) === `${archive.bundleDigest}${portsKey(ports)}`) {
      return { state: 'running' };
    }

    const image = checkOciLayout(archive);
    const dir = join(this.opts.stateDir, 'rootfs', `${id}-${a.generation}`);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    try {
      await applyLayers(archive, dir);
      const cfg = (image.config as { config?: Record<string, unknown> }).config ?? {};
      const plan = await buildRuntimePlan(
        {
          id,
          rootfs: dir,
          app: { name: a.app, imageDigest: a.imageDigest },
          runtime: archive.manifest.runtime,
          image: { entrypoint: cfg.Entrypoint, cmd: cfg.Cmd, env: cfg.Env, workingDir: cfg.WorkingDir, user: cfg.User } as ImageDefaults,
          grants,
          profiles: { seccomp: manifest.security?.seccomp, apparmor: manifest.security?.apparmor },
          // A known cgroup per container: its limits (runtime.resources) and its OOM reports.
          cgroupsPath: `/cerro-torre/${id}`,
        },
        facts,
      );
      if (existing) await this.opts.runtime.delete(id, { force: true }).catch(() => undefined);
      // The replaced container's network (and the host ports it held) goes with it.
      await this.opts.network?.detach(id);
      await rm(this.assignedPath(id), { force: true });
      if (archive.manifest.runtime?.network === 'bridge') {
        await attachNetwork(this.opts.network!, plan.config, { containerId: id, environment: a.environment, app: a.app, ports, egress: grants.network?.egress ?? 'none' });
      }
      const rec = await this.opts.runtime.run(id, plan.config, { appName: a.app, imageDigest: a.imageDigest });
      if (rec.status === 'running') {
        await mkdir(join(this.opts.stateDir, 'assigned'), { recursive: true, mode: 0o700 });
        await writeFileAtomic(this.assignedPath(id), `${JSON.stringify({ bundleDigest: `${archive.bundleDigest}${portsKey(ports)}`, generation: a.generation })}\n`, 0o600);
      } else {
        await this.opts.network?.suspend(id);
      }
      await this.removeOtherRootfs(id, dir);
      return { state: rec.status === 'running' ? 'running' : 'failed', exitCode: rec.exitCode ?? null, message: rec.status === 'running' ? undefined : `container ${rec.status}` };
    } catch (e) {
      await rm(dir, { recursive: true, force: true });
      // Nothing runs half-networked: a container that could not start leaves no network behind.
      await this.opts.network?.detach(id).catch(() => undefined);
      if (e instanceof CtError) return refused(e.code, e.message);
      return { state: 'failed', code: 'RUNTIME_ERROR', message: (e as Error).message };
    }
  }
}

/** The published ports as part of what runs: the same bundle with other ports is a new deploy. */
function portsKey(ports: readonly PublishedPort[]): string {
  return ports.length ? ` ports=${JSON.stringify(ports)}` : '';
}
