import { AlertBudget } from './alert-budget.js';
import { HOST_CHANNEL_DEFAULTS, type HostChannelLimits } from './limits.js';

/** Deployments whose latest status a host over its budget has waiting at once (~1.2 KB each). */
export const MAX_HELD_STATUSES = 64;

interface Held<S> {
  /** The latest status of each deployment, oldest first (a Map keeps insertion order). */
  latest: Map<string, S>;
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
 * still published, at most MAX_HELD_STATUSES deployments a host (the oldest one pushed out past
 * that: the host's latest status is always kept). A host that disconnects keeps its held statuses
 * and its bucket (reconnecting refills neither). Only publishing is limited: a deploy waiting for
 * a host's answer reads every status at once (HostHub).
 */
export class StatusBudget<S extends { deploymentId: string }> {
  private readonly budget: AlertBudget;
  private readonly held = new Map<string, Held<S>>();

  constructor(private readonly publish: (hostId: string, status: S) => void, limits: HostChannelLimits = {}, now: () => number = Date.now) {
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
    const held = h ?? { latest: new Map<string, S>(), merged: 0 };
    if (held.latest.delete(status.deploymentId)) held.merged++;
    held.latest.set(status.deploymentId, status);
    if (held.latest.size > MAX_HELD_STATUSES) {
      held.latest.delete(held.latest.keys().next().value!);
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
      this.publish(hostId, status);
    }
    this.held.delete(hostId);
  }
}
