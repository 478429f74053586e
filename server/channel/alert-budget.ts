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
  private readonly everyMs: number;
  private readonly onSummary?: (key: string, dropped: number) => void;
  private timer: NodeJS.Timeout | undefined;
  private sweptAt = -Infinity;

  /**
   * `limits`: another allowance of the same kind (INVENTORY_BUDGET: the inventory writes of a host);
   * `summaryEveryMs` (default 60 s) how often refusals are summed up. With `onSummary`, every refused
   * count reaches it: once a key's window has passed (a timer, unref'd, for a burst shorter than a
   * window) and at close(); without it, warning() hands counts out as it is asked.
   */
  constructor(
    private readonly now: () => number = Date.now,
    limits: { burst: number; perSecond: number; maxBytes: number; summaryEveryMs?: number } = { burst: ALERT_BURST, perSecond: ALERTS_PER_SECOND, maxBytes: MAX_ALERT_BYTES },
    onSummary?: (key: string, dropped: number) => void,
  ) {
    this.burst = limits.burst;
    this.perSecond = limits.perSecond;
    this.maxBytes = limits.maxBytes;
    this.everyMs = limits.summaryEveryMs ?? 60_000;
    this.onSummary = onSummary;
  }

  /** Whether this host's alert of `bytes` (its JSON) may be written now; a refused one is counted. */
  admit(hostId: string, bytes: number): boolean {
    const t = this.now();
    if (t - this.sweptAt >= this.everyMs) this.sweep(t);
    const h = this.hosts.get(hostId) ?? { tokens: this.burst, at: t, dropped: 0, warnedAt: -Infinity };
    h.tokens = Math.min(this.burst, h.tokens + ((t - h.at) / 1000) * this.perSecond);
    h.at = t;
    this.hosts.set(hostId, h);
    if (bytes <= this.maxBytes && h.tokens >= 1) {
      h.tokens -= 1;
      return true;
    }
    h.dropped++;
    if (this.onSummary) {
      const n = this.warning(hostId);
      if (n !== undefined) this.onSummary(hostId, n);
      else this.arm(h.warnedAt + this.everyMs - t);
    }
    return false;
  }

  /** Keys held now: refused or spending lately (the rest are forgotten). */
  get size(): number {
    return this.hosts.size;
  }

  /** Milliseconds until this host has a whole token again (0: it has one now). */
  nextIn(hostId: string): number {
    const h = this.hosts.get(hostId);
    if (!h) return 0;
    const tokens = Math.min(this.burst, h.tokens + ((this.now() - h.at) / 1000) * this.perSecond);
    return tokens >= 1 ? 0 : Math.ceil(((1 - tokens) / this.perSecond) * 1000);
  }

  /** The count of this host's alerts refused since the last warning, at most once a window (then 0 again). */
  warning(hostId: string): number | undefined {
    const t = this.now();
    const h = this.hosts.get(hostId);
    if (!h || h.dropped === 0 || t - h.warnedAt < this.everyMs) return undefined;
    h.warnedAt = t;
    const n = h.dropped;
    h.dropped = 0;
    return n;
  }

  /** Every count not summed up yet goes to onSummary now, whatever its window (the server stops). */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const [key, h] of this.hosts) {
      if (h.dropped === 0) continue;
      const n = h.dropped;
      h.dropped = 0;
      h.warnedAt = this.now();
      this.onSummary?.(key, n);
    }
  }

  /** One timer for the whole budget: the soonest pending window's end. */
  private arm(ms: number): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const t = this.now();
      let next = Infinity;
      for (const [key, h] of this.hosts) {
        if (h.dropped === 0) continue;
        const n = this.warning(key);
        if (n !== undefined) this.onSummary?.(key, n);
        else next = Math.min(next, h.warnedAt + this.everyMs - t);
      }
      if (next !== Infinity) this.arm(next);
      this.sweep(t);
    }, Math.max(1, ms));
    this.timer.unref();
  }

  /**
   * Drops the entries with nothing pending, whose window passed and whose bucket is full again:
   * one made afresh is the same, so the map holds only keys refused or spending lately.
   */
  private sweep(t: number): void {
    this.sweptAt = t;
    for (const [key, h] of this.hosts) {
      const full = h.tokens + ((t - h.at) / 1000) * this.perSecond >= this.burst;
      if (h.dropped === 0 && t - h.warnedAt >= this.everyMs && full) this.hosts.delete(key);
    }
  }
}
