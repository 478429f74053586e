/** Alerts a host may have written at once, and how fast its allowance comes back (per second). */
export const ALERT_BURST = 120;
export const ALERTS_PER_SECOND = 2;
/** The largest alert written to the audit log (its JSON); hosts cut their details to 1 KiB. */
export const MAX_ALERT_BYTES = 4096;

/**
 * Inventory writes a host may make at once, and one a second after that: a healthy host changes
 * its inventory at each deploy and action (and sends it every 30 s, written only when changed); a
 * host that sends a different one in every frame, compromised or broken, had up to ~700 KB
 * written to the hosts table per frame, as fast as its channel carried them.
 */
export const INVENTORY_BUDGET = { burst: 30, perSecond: 1, maxBytes: Infinity };

/**
 * Each host's allowance of alerts written to the audit log (a token bucket): a host's own limit
 * (host/agent/alerts.ts, 30 a minute per container) keeps a healthy one well below it; a host
 * that floods anyway, compromised or broken, writes at most ~2 a second (~700 MB a day at the
 * size cap), not as fast as its channel carries. This bounds the rate; the retention
 * (server/retention/prune.ts: 30 days, 100,000 per host, 1,000,000 in all by default) bounds what is kept. Per server process (each replica counts on its own). One entry per
 * host that sent alerts (enrolled hosts only: the channel is authenticated).
 */
export class AlertBudget {
  private readonly hosts = new Map<string, { tokens: number; at: number; dropped: number; warnedAt: number }>();
  private readonly burst: number;
  private readonly perSecond: number;
  private readonly maxBytes: number;

  /** `limits`: another allowance of the same kind (INVENTORY_BUDGET: the inventory writes of a host). */
  constructor(private readonly now: () => number = Date.now, limits: { burst: number; perSecond: number; maxBytes: number } = { burst: ALERT_BURST, perSecond: ALERTS_PER_SECOND, maxBytes: MAX_ALERT_BYTES }) {
    this.burst = limits.burst;
    this.perSecond = limits.perSecond;
    this.maxBytes = limits.maxBytes;
  }

  /** Whether this host's alert of `bytes` (its JSON) may be written now; a refused one is counted. */
  admit(hostId: string, bytes: number): boolean {
    const t = this.now();
    const h = this.hosts.get(hostId) ?? { tokens: this.burst, at: t, dropped: 0, warnedAt: -Infinity };
    h.tokens = Math.min(this.burst, h.tokens + ((t - h.at) / 1000) * this.perSecond);
    h.at = t;
    this.hosts.set(hostId, h);
    if (bytes <= this.maxBytes && h.tokens >= 1) {
      h.tokens -= 1;
      return true;
    }
    h.dropped++;
    return false;
  }

  /** Milliseconds until this host has a whole token again (0: it has one now). */
  nextIn(hostId: string): number {
    const h = this.hosts.get(hostId);
    if (!h) return 0;
    const tokens = Math.min(this.burst, h.tokens + ((this.now() - h.at) / 1000) * this.perSecond);
    return tokens >= 1 ? 0 : Math.ceil(((1 - tokens) / this.perSecond) * 1000);
  }

  /** The count of this host's alerts refused since the last warning, at most once a minute (then 0 again). */
  warning(hostId: string): number | undefined {
    const t = this.now();
    const h = this.hosts.get(hostId);
    if (!h || h.dropped === 0 || t - h.warnedAt < 60_000) return undefined;
    h.warnedAt = t;
    const n = h.dropped;
    h.dropped = 0;
    return n;
  }
}
