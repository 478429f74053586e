/**
 * What a host sends its server besides statuses (host/agent/alerts.ts): monitor events per
 * container, at most ALERTS_PER_MINUTE a minute each, the rest counted and reported once; agent
 * notes; everything raised before the channel exists kept (bounded) and sent first.
 */
import { describe, expect, it } from '@jest/globals';
import { ALERTS_PER_MINUTE, HostAlerts, type AlertEvent } from '../../host/agent/alerts.js';
import type { MonitorEvent } from '../../host/monitor/events.js';

const event = (i: number): MonitorEvent => ({
  kind: 'exec', rule: 'unexpected-exec', severity: 'critical', container: 'web-1', pid: 100 + i, tid: 100 + i, comm: 'sh', syscall: 'execve', detail: { path: `/bin/intruder-${i}` }, time: new Date(i).toISOString(),
});

describe('host alerts', () => {
  it('sends a container\'s first ALERTS_PER_MINUTE events of a minute, then one count of the rest; other containers are not held back', () => {
    let now = 1_000_000;
    const alerts = new HostAlerts(() => now);
    const sent: AlertEvent[] = [];
    alerts.attach((e) => sent.push(e));
    for (let i = 0; i < ALERTS_PER_MINUTE + 12; i++) alerts.monitor('ct-web', event(i));
    alerts.monitor('ct-db', event(999));
    expect(sent.filter((e) => e.container === 'ct-web')).toHaveLength(ALERTS_PER_MINUTE);
    expect(sent.filter((e) => e.container === 'ct-db')).toHaveLength(1);
    expect(sent[0]).toMatchObject({ kind: 'monitor', container: 'ct-web', rule: 'unexpected-exec', severity: 'critical', ruleKind: 'exec', comm: 'sh', syscall: 'execve', pid: 100 });
    expect(sent[0].detail).toBe('critical unexpected-exec: sh execve {"path":"/bin/intruder-0"}');
    // Within the minute nothing more; once it is over, the count of what was held back.
    now += 59_000;
    alerts.tick();
    expect(sent.some((e) => e.kind === 'monitor.suppressed')).toBe(false);
    now += 1_000;
    alerts.tick();
    const held = sent.filter((e) => e.kind === 'monitor.suppressed');
    expect(held).toEqual([expect.objectContaining({ container: 'ct-web', count: 12, detail: expect.stringContaining('12 more monitor alerts of ct-web') })]);
    // A new minute: events go out again, and the count is not sent twice.
    alerts.monitor('ct-web', event(1));
    alerts.tick();
    expect(sent.at(-1)).toMatchObject({ kind: 'monitor', container: 'ct-web' });
    expect(sent.filter((e) => e.kind === 'monitor.suppressed')).toHaveLength(1);
  });

  it('reports the held-back count at the next event after the minute when no pass came in between', () => {
    let now = 0;
    const alerts = new HostAlerts(() => now);
    const sent: AlertEvent[] = [];
    alerts.attach((e) => sent.push(e));
    for (let i = 0; i < ALERTS_PER_MINUTE + 1; i++) alerts.monitor('ct-web', event(i));
    now = 61_000;
    alerts.monitor('ct-web', event(2));
    expect(sent.slice(-2).map((e) => e.kind)).toEqual(['monitor.suppressed', 'monitor']);
  });

  it('keeps what is raised before the channel exists (the newest 256) and sends it first, saying how many were lost', () => {
    const alerts = new HostAlerts(() => 0);
    for (let i = 0; i < 300; i++) alerts.note('host.recovery', `line ${i}`);
    const sent: AlertEvent[] = [];
    alerts.attach((e) => sent.push(e));
    expect(sent[0]).toMatchObject({ kind: 'host.alerts-dropped', detail: expect.stringContaining('44 alerts') });
    expect(sent.slice(1).map((e) => e.detail)).toEqual(Array.from({ length: 256 }, (_, i) => `line ${i + 44}`));
    alerts.note('host.recovery', 'x'.repeat(5000));
    expect(sent.at(-1)!.detail).toHaveLength(1024);
  });
});
