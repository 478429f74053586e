import type { HostMessage } from '../../src/protocol/messages.js';
import type { MonitorEvent } from '../monitor/events.js';

export type AlertEvent = Extract<HostMessage, { type: 'event' }>['event'];

/** Alerts of one container sent per minute; the rest are counted and reported as one alert. */
export const ALERTS_PER_MINUTE = 30;
/** Alerts kept while they cannot be sent (no channel yet, or it is down); the oldest go first. */
export const MAX_KEPT_ALERTS = 256;
const MINUTE = 60_000;

/**
 * Alerts kept until they can be sent, the newest MAX_KEPT_ALERTS of them; `drain` sends them in
 * order, after one `host.alerts-dropped` alert counting those that were not kept. `when` says when
 * they were raised ("while disconnected").
 */
export class AlertBacklog {
  private items: { event: AlertEvent; deploymentId?: string }[] = [];
  private dropped = 0;

  constructor(private readonly when: string, private readonly now: () => number = Date.now) {}

  push(event: AlertEvent, deploymentId?: string): void {
    if (this.items.length >= MAX_KEPT_ALERTS) {
      this.items.shift();
      this.dropped++;
    }
    this.items.push({ event, deploymentId });
  }

  drain(send: (event: AlertEvent, deploymentId?: string) => void): void {
    if (this.dropped > 0) {
      send({ kind: 'host.alerts-dropped', detail: `${this.dropped} alerts raised ${this.when} were not kept (at most ${MAX_KEPT_ALERTS})`, time: new Date(this.now()).toISOString() });
      this.dropped = 0;
    }
    for (const { event, deploymentId } of this.items.splice(0)) send(event, deploymentId);
  }
}

/**
 * What the host tells its server besides statuses: the eBPF monitor's events for each watched
 * container and the agent's own notes (recovered replaces). A container that floods events (an
 * exec loop) must not flood the channel and the server's audit log: each container gets
 * ALERTS_PER_MINUTE alerts a minute; what was held back is sent as one `monitor.suppressed`
 * alert with the count when its next minute starts (or at the next alert after it).
 */
export class HostAlerts {
  private send?: (event: AlertEvent) => void;
  private readonly pending: AlertBacklog;
  private readonly windows = new Map<string, { start: number; sent: number; held: number }>();

  constructor(private readonly now: () => number = Date.now) {
    this.pending = new AlertBacklog('before the agent connected', now);
  }

  /** From now on alerts go to `send` (the agent's channel); those kept meanwhile go first. */
  attach(send: (event: AlertEvent) => void): void {
    this.send = send;
    this.pending.drain(send);
  }

  /** A monitor event of `container` (the app's container id). */
  monitor(container: string, ev: MonitorEvent): void {
    const t = this.now();
    let w = this.windows.get(container);
    if (w && t - w.start >= MINUTE) {
      this.flushHeld(container, w);
      w = undefined;
    }
    if (!w) this.windows.set(container, (w = { start: t, sent: 0, held: 0 }));
    if (w.sent >= ALERTS_PER_MINUTE) {
      w.held++;
      return;
    }
    w.sent++;
    this.emit({
      kind: 'monitor', container, rule: ev.rule, severity: ev.severity, ruleKind: ev.kind, comm: ev.comm, syscall: ev.syscall, pid: ev.pid,
      detail: `${ev.severity} ${ev.rule}: ${ev.comm} ${ev.syscall} ${JSON.stringify(ev.detail)}`.slice(0, 1024), time: ev.time,
    });
  }

  /** An agent note (kind `host.<what>`), e.g. a replace recovered after a restart. */
  note(kind: string, detail: string, extra: Record<string, string> = {}): void {
    this.emit({ kind, detail: detail.slice(0, 1024), time: new Date(this.now()).toISOString(), ...extra });
  }

  /** Sends the counts of held-back alerts whose minute is over (the agent's periodic pass). */
  tick(): void {
    const t = this.now();
    for (const [container, w] of this.windows) {
      if (t - w.start < MINUTE) continue;
      this.flushHeld(container, w);
      this.windows.delete(container);
    }
  }

  private flushHeld(container: string, w: { start: number; held: number }): void {
    if (w.held === 0) return;
    this.emit({
      kind: 'monitor.suppressed', container, count: w.held, time: new Date(this.now()).toISOString(),
      detail: `${w.held} more monitor alerts of ${container} in the minute from ${new Date(w.start).toISOString()} were not sent (at most ${ALERTS_PER_MINUTE} a minute)`,
    });
  }

  private emit(e: AlertEvent): void {
    if (this.send) this.send(e);
    else this.pending.push(e);
  }
}
