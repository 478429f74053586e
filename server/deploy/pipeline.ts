import { randomUUID } from 'node:crypto';
import type { PublishedPort } from '../../src/protocol/ports.js';
import type { CommitInfo } from '../gitops/commit-info.js';
import { signerSummary } from './signers.js';
import type { ServerContext } from '../context.js';
import { publish } from '../context.js';
import type { actor } from '../audit.js';
import type { Job, JobOutcome } from '../queue/queue.js';
import type { Notifier } from '../notifiers/notifier.js';
import type { Assignment, HostFacts } from '../../src/protocol/messages.js';
import { policyHostFacts } from '../../src/protocol/policy-facts.js';
import type { PolicySet } from '../../src/policy/policy-set.js';
import { FINAL, type DeployEvent, type DeployStatus } from './status.js';
import { hostLabels, isTarget, targetsOf } from './host-targets.js';
import { terminalText } from '../../src/core/terminal.js';

/** A host whose channel sent nothing for this long (inventory comes every 30 s) is not counted as connected to another replica. */
const REPLICA_FRESH_MS = 90_000;
/** At most this many distinct notes of the hosts go into a success's message, */
const MAX_HOST_NOTES = 3;
/** A host's own notes (it joins them by '; '): an agent says at most two (host/agent/runner.ts). */
const NOTES_PER_HOST = 2;
/** each cut to this many characters (the hub lets 1000 in: a host's text should not be most of the message). */
const MAX_HOST_NOTE = 200;

/**
 * A host's note as the deployment's message shows it: one line (it is joined with others by `; `),
 * its controls and invisible marks written as visible escapes (terminalText: the message reaches
 * terminals through `ct`, notifiers and the audit log), at most MAX_HOST_NOTE characters. A host is
 * not trusted with what other readers see.
 */
function hostNote(message: string): string {
  const chars = [...terminalText(message.replace(/[\t\n]+/g, ' ').trim())];
  return chars.length > MAX_HOST_NOTE ? `${chars.slice(0, MAX_HOST_NOTE - 1).join('')}…` : chars.join('');
}

/** The outcome of fetching + verifying a bundle for a deploy. */
export type VerifiedBundle =
  | { ok: true; path: string; bundleDigest: string; imageDigest: string; evidence: unknown; manifest: unknown }
  | { ok: false; transient: boolean; code: string; message: string };

export type PolicyVerdict = { allow: true; warnings: string[] } | { allow: false; code: string; message: string };

/**
 * What one deploy's steps work out once for all its hosts (the VSAs of the bundle, verified; the
 * assignment sent to every host), instead of once per host. One per deploy run, never kept longer:
 * what it holds is judged at that moment.
 */
export interface DeployRun {
  verifiedIn?: Promise<{ environments: string[]; envelopes: string[] }>;
  assignment?: Promise<Omit<Assignment, 'generation'>>;
  /** Verdicts by the policy-relevant host facts they were reached on, with the policy set that reached them (steps.ts decide). */
  verdicts?: Map<string, { policies: PolicySet; verdict: PolicyVerdict }>;
}

/** The steps a deploy runs through; the server wires the real ones (steps.ts), tests may too. */
export interface DeploySteps {
  fetchAndVerify(reference: string, environment: string, bundleDigest?: string): Promise<VerifiedBundle>;
  /** `policy` narrows the decision to one named policy (Svalinn's `{digest, policy}`), never widens it. */
  decide(bundle: Extract<VerifiedBundle, { ok: true }>, host: { id: string; facts: HostFacts | undefined; labels: Record<string, string> }, environment: string, policy?: string, run?: DeployRun): Promise<PolicyVerdict>;
  dispatch(hostId: string, bundle: Extract<VerifiedBundle, { ok: true }>, d: DeploymentRow, run?: DeployRun): Promise<{ state: string; code?: string; message?: string }>;
  hostFacts(hostId: string): HostFacts | undefined;
}

export interface DeploymentRow {
  id: string;
  environment: string;
  app: string;
  commit_sha: string;
  reference: string;
  status: DeployStatus;
  repo: string | null;
  hosts: string;
  bundle_digest: string | null;
  /** JSON list of published ports (desired state `ports:`), or null. */
  ports?: string | null;
  /** 1: desired state `suspended: true` (the hosts stop the app and report `suspended`). */
  suspended?: number | boolean | null;
  /** JSON `{kind, id, role}` of who asked through the API (server/audit.ts actor), or null (GitOps). */
  created_by?: string | null;
}

export interface ReportTarget {
  provider: 'github' | 'gitlab' | 'none';
  repository: string;
}

/**
 * One deploy, run from the job queue: load, guard (a final status is never redone), then
 * fetch → verify → policy per target host → dispatch → wait for the hosts → report. Each step
 * returns early on failure; the status is saved and reported in `finally`. Final outcomes
 * (denied, failed) are not retried; `error` (could not run) is.
 */
export class DeployPipeline {
  /** Progress statuses still being posted, per deployment. */
  private readonly reporting = new Map<string, Promise<void>>();

  constructor(
    private readonly ctx: ServerContext,
    private readonly steps: DeploySteps,
    private readonly notifiers: Partial<Record<'github' | 'gitlab', Notifier>>,
    private readonly target: ReportTarget,
    /** Told of each deploy that succeeded (the deploy VSA and promotions: server/promotion). */
    private readonly onSucceeded?: (row: DeploymentRow) => Promise<void>,
  ) {}

  async create(commit: string, environment: string, app: string, reference: string, selector: Record<string, string>, rollbackOf?: string, bundleDigest?: string, ports?: readonly PublishedPort[], info?: CommitInfo, suspended?: boolean, createdBy?: ReturnType<typeof actor>): Promise<{ id: string; created: boolean }> {
    const id = randomUUID();
    const now = Date.now();
    const ins = await this.ctx.db.run(
      `INSERT INTO deployments (id, environment, app, commit_sha, reference, bundle_digest, status, hosts, repo, rollback_of, created_at, updated_at, ports, commit_author, commit_message, suspended, created_by)
       VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (commit_sha, environment, app) DO NOTHING`,
      [id, environment, app, commit, reference, bundleDigest ?? null, JSON.stringify(selector), this.target.repository, rollbackOf ?? null, now, now, ports?.length ? JSON.stringify(ports) : null, info?.author ?? null, info?.message ?? null, suspended ? 1 : 0, createdBy ? JSON.stringify(createdBy) : null],
    );
    const [row] = await this.ctx.db.query<{ id: string }>('SELECT id FROM deployments WHERE commit_sha = ? AND environment = ? AND app = ?', [commit, environment, app]);
    await this.ctx.queue.enqueue('deploy', `deploy:${row.id}`, { deploymentId: row.id });
    return { id: row.id, created: ins.changes > 0 };
  }

  async handle(job: Job): Promise<JobOutcome> {
    const { deploymentId } = job.payload as { deploymentId: string };
    const [row] = await this.ctx.db.query<DeploymentRow>('SELECT * FROM deployments WHERE id = ?', [deploymentId]);
    if (!row) return { state: 'failed', error: 'unknown deployment' };
    if (FINAL.has(row.status)) {
      // Finished before a crash: make sure its final status reached the forge, exactly once.
      const [m] = await this.ctx.db.query<{ value: string }>(`SELECT value FROM notifier_state WHERE deployment_id = ? AND key = 'final'`, [row.id]);
      if (!m && !(await this.reportFinal(row, row.status, (row as { reason?: string }).reason ?? undefined, (row as { message?: string }).message ?? ''))) {
        return { state: 'retry', error: 'final status report failed' };
      }
      return { state: 'done', result: { status: row.status } };
    }
    const place = await this.placement(JSON.parse(row.hosts) as Record<string, string>, row.environment);
    if (typeof place === 'object') return { state: 'handoff', to: place.to, reason: `the hosts of ${row.environment}/${row.app} are connected to replica ${place.to}` };
    const lastAttempt = job.attempts >= job.maxAttempts;
    const r = place === 'split'
      ? { status: 'error' as const, reason: 'HOSTS_SPLIT', message: 'the matching hosts are connected to different replicas' }
      : await this.run(row);
    if (r.status === 'error' && !lastAttempt) {
      await this.settle(row.id);
      await this.save(row, 'queued', r.reason, r.message);
      return { state: 'retry', error: `${r.reason}: ${r.message}` };
    }
    await this.save(row, r.status, r.reason, r.message, r.extra);
    this.ctx.metrics.deploys.inc({ environment: row.environment, status: r.status });
    await this.audit(row, r);
    if (r.status === 'succeeded') await this.onSucceeded?.(row);
    // The outcome is saved; only its report is retried (the guard above) if the forge failed.
    if (!(await this.reportFinal(row, r.status, r.reason, r.message))) return { state: 'retry', error: 'final status report failed' };
    return { state: 'done', result: r };
  }

  private async run(row: DeploymentRow): Promise<{ status: DeployStatus; reason?: string; message: string; extra?: Record<string, unknown> }> {
    await this.save(row, 'verifying');
    this.progress(row, 'verifying', 'fetching and verifying the bundle');
    const bundle = await this.steps.fetchAndVerify(row.reference, row.environment, row.bundle_digest ?? undefined);
    if (!bundle.ok) {
      return bundle.transient ? { status: 'error', reason: bundle.code, message: bundle.message } : { status: 'denied', reason: bundle.code, message: bundle.message };
    }
    const selector = JSON.parse(row.hosts) as Record<string, string>;
    const { hosts, offline } = await this.matchingHosts(selector, row.environment);
    if (offline.length) return { status: 'error', reason: 'HOST_UNAVAILABLE', message: `${offline.length} matching host(s) not connected: ${offline.join(', ')}` };
    if (hosts.length === 0) return { status: 'error', reason: 'NO_HOST', message: `no host of environment ${row.environment} matches ${JSON.stringify(selector)}` };
    const once: DeployRun = {};
    for (const h of hosts) {
      const v = await this.steps.decide(bundle, h, row.environment, undefined, once);
      if (!v.allow) return { status: 'denied', reason: v.code, message: `${v.message} (host ${h.id})` };
    }
    // An older deployment that runs late (a retry after a newer one succeeded) never downgrades.
    const [newer] = await this.ctx.db.query<{ id: string }>(
      'SELECT id FROM deployments WHERE environment = ? AND app = ? AND created_at > ? AND id <> ? LIMIT 1',
      [row.environment, row.app, (row as unknown as { created_at: number }).created_at, row.id],
    );
    if (newer) return { status: 'superseded', reason: 'SUPERSEDED', message: `deployment ${newer.id} is newer` };
    await this.save(row, 'dispatching');
    // Loops over the hosts, not closures made per deploy (server/channel/within.ts says why).
    const sends: Promise<{ state: string; code?: string; message?: string }>[] = [];
    for (const h of hosts) sends.push(this.steps.dispatch(h.id, bundle, row, once));
    const dispatched = await Promise.all(sends);
    // A host removed while the deploy waited for it is no longer a target: its HOST_REMOVED is
    // dropped before the outcome is judged (else a deploy that runs on every remaining host failed
    // for good). Only when its row is really gone: a host's own word is not taken for it.
    const removed: string[] = [];
    for (let i = 0; i < hosts.length; i++) if (dispatched[i].code === 'HOST_REMOVED') removed.push(hosts[i].id);
    const gone = await this.removedHosts(removed);
    const results: { state: string; code?: string; message?: string }[] = [];
    for (let i = 0; i < hosts.length; i++) if (!gone.has(hosts[i].id)) results.push(dispatched[i]);
    const remaining = hosts.length - gone.size;
    if (remaining === 0) return { status: 'error', reason: 'NO_HOST', message: `no host of environment ${row.environment} matches ${JSON.stringify(selector)}: every one was removed meanwhile` };
    // A suspended app succeeds when every host has it stopped and held (`suspended`), not running.
    const suspended = Boolean(Number(row.suspended ?? 0));
    const want = suspended ? 'suspended' : 'running';
    const bads: { state: string; code?: string; message?: string }[] = [];
    for (const x of results) if (x.state !== want) bads.push(x);
    // A host's final failure decides over another's `superseded`, and that over one that could not
    // take it just now: retrying would only replace (and roll back) the failing host's app again.
    const busy = (x: { state: string; code?: string }) => x.state === 'refused' && (x.code === 'CONTAINER_BUSY' || x.code === 'GENERATION_BUSY');
    const transient = (x: { state: string; code?: string }) => x.state === 'timeout' || x.state === 'offline' || busy(x);
    const overtaken = (x: { state: string; code?: string }) => x.state === 'refused' && x.code === 'SUPERSEDED';
    const bad = bads.find((x) => !transient(x) && !overtaken(x)) ?? bads.find(overtaken) ?? bads[0];
    // What the policies judged besides the evidence (manifest facts, the first target's host facts):
    // kept so that a policy change can be judged later on exactly this input (policy impact, diff).
    const decisionInput = { manifest: (bundle.manifest as { manifest?: unknown } | undefined)?.manifest ?? {}, hostFacts: policyHostFacts(hosts[0].facts, row.environment) };
    const extra = { imageDigest: bundle.imageDigest, bundleDigest: bundle.bundleDigest, evidence: bundle.evidence, decisionInput };
    // What the hosts that run it said besides (an app on a bridge without a DNS name: host/agent/
    // network-hook.ts), once per text and a few at most: shown with the outcome, not lost with it.
    // A host joins its own notes by '; ' (the publish address and the DNS name): each is bounded on
    // its own, so a long first one does not cut the next away; a host adds at most
    // NOTES_PER_HOST new ones (blank and repeated parts take no place), so one host cannot push
    // the others' out. The hub bounds a host's message (1000 characters): the split is small.
    const noted = new Set<string>();
    for (const x of results) {
      if (noted.size >= MAX_HOST_NOTES) break;
      if (x.state !== 'running' || !x.message) continue;
      let added = 0;
      for (const part of x.message.split('; ')) {
        if (added >= NOTES_PER_HOST || noted.size >= MAX_HOST_NOTES) break;
        const note = hostNote(part);
        if (note === '' || noted.has(note)) continue;
        noted.add(note);
        added++;
      }
    }
    const notes = [...noted];
    if (!bad) return { status: 'succeeded', message: [`${suspended ? 'suspended' : 'running'} on ${remaining} host(s)`, ...notes].join('; '), extra };
    if (bad.state === 'timeout' || bad.state === 'offline') return { status: 'error', reason: 'HOST_UNAVAILABLE', message: `a host did not answer (${bad.state})`, extra };
    // A host that held the app set this one aside and a newer deployment overtook it there.
    if (overtaken(bad)) return { status: 'superseded', reason: 'SUPERSEDED', message: bad.message ?? 'a newer deployment overtook it on a host', extra };
    // A host that could not take it just now (its agent stopping, the app held by a replace it is
    // ending) said so: not the bundle's failure, so it is tried again.
    if (bad.state === 'refused' && bad.code === 'CONTAINER_BUSY') return { status: 'error', reason: 'CONTAINER_BUSY', message: `a host was busy: ${bad.message ?? 'try again'}`, extra };
    // The server could not number the assignment in time (its generations row held elsewhere: HostHub): nothing was sent.
    if (busy(bad)) return { status: 'error', reason: 'GENERATION_BUSY', message: `a host's assignment was not sent: ${bad.message ?? 'try again'}`, extra };
    return { status: 'failed', reason: bad.code ?? 'HOST_FAILED', message: bad.message ?? `host reported ${bad.state}`, extra };
  }

  /** Which of these hosts have no row any more (removed: server/hosts/removal.ts). */
  private async removedHosts(ids: string[]): Promise<Set<string>> {
    const live = new Set<string>();
    // In slices: a fleet decommissioned at once must not exceed the database's parameter limit.
    for (let i = 0; i < ids.length; i += 500) {
      const slice = ids.slice(i, i + 500);
      for (const r of await this.ctx.db.query<{ id: string }>(`SELECT id FROM hosts WHERE id IN (${slice.map(() => '?').join(', ')})`, slice)) live.add(r.id);
    }
    return new Set(ids.filter((id) => !live.has(id)));
  }

  /**
   * Several replicas share one database but each holds its own host channels. A deploy runs on the
   * replica its matching hosts are connected to: when they are all connected elsewhere, the job is
   * handed to that replica; split over several replicas, it cannot run as one deploy.
   */
  private async placement(selector: Record<string, string>, environment: string): Promise<'here' | 'split' | { to: string }> {
    const rows = await this.ctx.db.query<{ id: string; labels: string; replica: string | null; last_seen: number | null }>('SELECT id, labels, replica, last_seen FROM hosts');
    const me = this.ctx.queue.workerId;
    const fresh = Date.now() - REPLICA_FRESH_MS;
    let here = false;
    const elsewhere = new Set<string>();
    // The same hosts matchingHosts() deploys to: selector and the host's own environment label.
    const targets = targetsOf(environment, selector);
    for (const r of rows) {
      if (!isTarget(targets, hostLabels(r.labels))) continue;
      if (this.steps.hostFacts(r.id)) here = true;
      else if (r.replica && r.replica !== me && Number(r.last_seen ?? 0) > fresh) elsewhere.add(r.replica);
    }
    if (elsewhere.size === 0) return 'here';
    if (here || elsewhere.size > 1) return 'split';
    return { to: [...elsewhere][0] };
  }

  /**
   * The hosts a deploy goes to: those whose labels match the selector AND whose admin-set
   * environment label (`env` or `environment`, given at enrolment) is the deployment's — a
   * caller cannot send a dev deploy to production hosts by choosing the selector. Matching hosts
   * that are not connected are returned apart: the deploy waits for them rather than reporting
   * success without them.
   */
  private async matchingHosts(selector: Record<string, string>, environment: string): Promise<{ hosts: { id: string; facts: HostFacts; labels: Record<string, string> }[]; offline: string[] }> {
    const rows = await this.ctx.db.query<{ id: string; name: string; labels: string }>('SELECT id, name, labels FROM hosts ORDER BY name');
    const hosts: { id: string; facts: HostFacts; labels: Record<string, string> }[] = [];
    const offline: string[] = [];
    const targets = targetsOf(environment, selector);
    for (const r of rows) {
      const labels = hostLabels(r.labels);
      if (!isTarget(targets, labels)) continue;
      const facts = this.steps.hostFacts(r.id);
      if (facts) hosts.push({ id: r.id, facts, labels });
      else offline.push(r.name);
    }
    return { hosts, offline };
  }

  private async save(row: DeploymentRow, status: DeployStatus, reason?: string, message?: string, extra?: Record<string, unknown>): Promise<void> {
    await this.ctx.db.run('UPDATE deployments SET status = ?, reason = ?, message = ?, image_digest = COALESCE(?, image_digest), bundle_digest = COALESCE(?, bundle_digest), evidence = COALESCE(?, evidence), signers = COALESCE(?, signers), decision_input = COALESCE(?, decision_input), updated_at = ? WHERE id = ?', [
      status, reason ?? null, message ?? null, (extra?.imageDigest as string) ?? null, (extra?.bundleDigest as string) ?? null, extra?.evidence ? JSON.stringify(extra.evidence) : null,
      extra?.evidence ? JSON.stringify(signerSummary(extra.evidence)) : null, extra?.decisionInput ? JSON.stringify(extra.decisionInput) : null, Date.now(), row.id,
    ]);
    publish(this.ctx, 'deployment', { id: row.id, environment: row.environment, app: row.app, status, reason });
  }

  /** Posts to the forge; false when that failed (the outcome itself never depends on it). */
  private async report(row: DeploymentRow, status: DeployStatus, reason: string | undefined, description: string): Promise<boolean> {
    const n = this.target.provider === 'none' ? undefined : this.notifiers[this.target.provider];
    // API deploys report to the commit the caller named (`api:<sha>:…`), or nowhere.
    const sha = /^api:/.test(row.commit_sha) ? /^api:([0-9a-f]{40}):/.exec(row.commit_sha)?.[1] : row.commit_sha;
    if (!n || !sha) return true;
    const event: DeployEvent = {
      deploymentId: row.id, repository: this.target.repository, provider: this.target.provider, sha,
      environment: row.environment, app: row.app, bundle: row.reference, status, reason, description,
      targetUrl: this.ctx.config.publicUrl ? `${this.ctx.config.publicUrl}/api/v1/deployments/${row.id}` : undefined,
    };
    try {
      await n.post(event);
      return true;
    } catch (e) {
      // A reporting failure never changes the deploy's outcome; it is logged, and a final one retried.
      this.ctx.log.warn({ err: (e as Error).message, deployment: row.id }, 'status report failed');
      return false;
    }
  }

  /**
   * A progress status is posted while the deploy goes on (the forge's latency is not the
   * deploy's), in order: the final status waits for it, so a late `pending` never follows it.
   */
  private progress(row: DeploymentRow, status: DeployStatus, description: string): void {
    const next = (this.reporting.get(row.id) ?? Promise.resolve()).then(async () => void (await this.report(row, status, undefined, description)));
    this.reporting.set(row.id, next);
  }

  private async settle(id: string): Promise<void> {
    await this.reporting.get(id);
    this.reporting.delete(id);
  }

  private async reportFinal(row: DeploymentRow, status: DeployStatus, reason: string | undefined, message: string): Promise<boolean> {
    await this.settle(row.id);
    if (!(await this.report(row, status, reason, message))) return false;
    await this.ctx.db.run(`INSERT INTO notifier_state (deployment_id, key, value) VALUES (?, 'final', ?) ON CONFLICT DO NOTHING`, [row.id, status]);
    return true;
  }

  private async audit(row: DeploymentRow, r: { status: DeployStatus; reason?: string; message: string }): Promise<void> {
    await this.ctx.db.run('INSERT INTO audit (id, time, kind, subject, record) VALUES (?, ?, ?, ?, ?)', [
      randomUUID(), Date.now(), 'deploy.decision', row.id,
      // The decision names who asked for the deploy through the API (null: GitOps, by commit).
      JSON.stringify({ deployment: row.id, environment: row.environment, app: row.app, commit: row.commit_sha, reference: row.reference, decision: r.status, code: r.reason ?? null, message: r.message, principal: row.created_by ? JSON.parse(row.created_by) : null }),
    ]);
  }
}
