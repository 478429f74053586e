import { AlertBudget } from './alert-budget.js';
import { HOST_CHANNEL_DEFAULTS, type HostChannelLimits } from './limits.js';

/**
 * Deployments whose latest status a host over its budget has waiting at once (~1.2 KB each, so
 * ~1.2 MB a host at most): room for a legitimate burst (a host refusing a few hundred assignments
 * at once) without pushing out any of them.
 */
export const MAX_HELD_STATUSES = 1024;

interface Held<S> {
  /** The latest status of each deployment, oldest first (a Map keeps insertion order). */
  latest: Map<string, S>;
  /** The deployments among them whose latest status is not final (progress), oldest first. */
  progress: Set<string>;
  timer?: NodeJS.Timeout;
  /** Statuses replaced by a newer one of their deployment, or pushed out, since the last warning. */
  merged: number;
}

/**
 * How many of a host's statuses are published to event subscribers (`host.status`: every open
 * `/api/v1/events` stream, the dashboard). A healthy host sends one or two per assignment; one
 * that sends them as fast as its channel carries (compromised or broken) had each sent to every
 * subscriber. Each host has a token bucket (`statusBurst`, refilled at `statusPerSecond`); over
 * it, a status is held as its deployment's latest (a newer one replaces it) and published in
 * order as tokens come back, so the flood is merged and the last state of every deployment is
 * still published, at most MAX_HELD_STATUSES deployments a host. Past that a held progress status
 * (not final) is pushed out first, the oldest: a final status is the one subscribers (the
 * dashboard, a CI job following its deploy) wait for, and pushing out the oldest whatever it was
 * lost finals of a legitimate burst (200 refused assignments: 136 never published). Only when
 * every held status is final does the oldest final go (the bound holds against a host flooding
 * finals; the host's latest status is always kept). A host that disconnects keeps its held statuses
 * and its bucket (reconnecting refills neither). Only publishing is limited: a deploy waiting for
 * a host's answer reads every status at once (HostHub).
 */
export class StatusBudget<S extends { deploymentId: string }> {
  private readonly budget: AlertBudget;
  private readonly held = new Map<string, Held<S>>();

  constructor(
    private readonly publish: (hostId: string, status: S) => void,
    limits: HostChannelLimits = {},
    now: () => number = Date.now,
    /** Whether a status is its deployment's final one (an answer to its assignment). */
    private readonly isFinal: (status: S) => boolean = () => false,
  ) {
    this.budget = new AlertBudget(now, {
      burst: limits.statusBurst ?? HOST_CHANNEL_DEFAULTS.statusBurst,
      perSecond: limits.statusPerSecond ?? HOST_CHANNEL_DEFAULTS.statusPerSecond,
      maxBytes: Infinity,
    });
  }

  /** A host's status: published now, or held as its deployment's latest. */
  offer(hostId: string, status: S): void {
    const h = this.held.get(hostId);
    // Behind held ones, even with a token now: a newer status must not be overtaken by an older one.
    if (!h && this.budget.admit(hostId, 0)) return this.publish(hostId, status);
    const held = h ?? { latest: new Map<string, S>(), progress: new Set<string>(), merged: 0 };
    const id = status.deploymentId;
    if (held.latest.delete(id)) held.merged++;
    held.progress.delete(id);
    held.latest.set(id, status);
    if (!this.isFinal(status)) held.progress.add(id);
    if (held.latest.size > MAX_HELD_STATUSES) {
      // The oldest progress status; the oldest final one only when none is left.
      const out = held.progress.values().next().value ?? held.latest.keys().next().value!;
      held.latest.delete(out);
      held.progress.delete(out);
      held.merged++;
    }
    if (!h) {
      this.held.set(hostId, held);
      this.arm(hostId, held);
    }
  }

  /**
   * This host's statuses held over its budget since the last warning, and how many of them were
   * merged into a newer one (or pushed out): at most once a minute, then counted from 0 again.
   */
  warning(hostId: string): { held: number; merged: number } | undefined {
    const held = this.budget.warning(hostId);
    if (held === undefined) return undefined;
    const h = this.held.get(hostId);
    const merged = h?.merged ?? 0;
    if (h) h.merged = 0;
    return { held, merged };
  }

  /** Nothing more published (the server stops). */
  close(): void {
    for (const h of this.held.values()) clearTimeout(h.timer);
    this.held.clear();
  }

  private arm(hostId: string, held: Held<S>): void {
    held.timer = setTimeout(() => this.flush(hostId, held), Math.max(1, this.budget.nextIn(hostId)));
    held.timer.unref();
  }

  private flush(hostId: string, held: Held<S>): void {
    if (this.held.get(hostId) !== held) return;
    for (const [deploymentId, status] of held.latest) {
      // Asked first: a refused admit() would count as one more held status in the warning.
      if (this.budget.nextIn(hostId) > 0) return this.arm(hostId, held);
      this.budget.admit(hostId, 0);
      held.latest.delete(deploymentId);
      held.progress.delete(deploymentId);
      this.publish(hostId, status);
    }
    this.held.delete(hostId);
  }
}
