/** Each host's allowance of alerts written to the audit log (server/channel/alert-budget.ts). */
import { describe, expect, it } from '@jest/globals';
import { ALERT_BURST, ALERTS_PER_SECOND, AlertBudget, MAX_ALERT_BYTES } from '../../server/channel/alert-budget.js';

describe('alert budget', () => {
  it('admits a burst, then what the rate gives back; hosts have their own; warns with the count once a minute', () => {
    let now = 0;
    const b = new AlertBudget(() => now);
    let admitted = 0;
    for (let i = 0; i < ALERT_BURST * 2; i++) if (b.admit('h1', 100)) admitted++;
    expect(admitted).toBe(ALERT_BURST);
    expect(b.admit('h2', 100)).toBe(true);
    expect(b.warning('h1')).toBe(ALERT_BURST);
    expect(b.admit('h1', 100)).toBe(false);
    expect(b.warning('h1')).toBeUndefined(); // within the minute
    now += 10_000;
    let back = 0;
    for (let i = 0; i < 100; i++) if (b.admit('h1', 100)) back++;
    expect(back).toBe(10 * ALERTS_PER_SECOND);
    now += 60_000;
    expect(b.warning('h1')).toBe(1 + 100 - back);
    expect(b.warning('h2')).toBeUndefined(); // nothing refused
  });

  it('refuses an alert larger than MAX_ALERT_BYTES and counts it', () => {
    const b = new AlertBudget(() => 0);
    expect(b.admit('h1', MAX_ALERT_BYTES + 1)).toBe(false);
    expect(b.admit('h1', MAX_ALERT_BYTES)).toBe(true);
    expect(b.warning('h1')).toBe(1);
  });

  it('sums up every refusal of a burst shorter than the window: by a timer once it passed, and at close', async () => {
    // The reviewer's burst: 1,240 alerts 40 ms apart (under 50 s) against a burst of 240 at 0.2 a second.
    let now = 0;
    const summed: number[] = [];
    const b = new AlertBudget(() => now, { burst: 240, perSecond: 0.2, maxBytes: Infinity }, (_k, n) => summed.push(n));
    let written = 0;
    for (let i = 0; i < 1240; i++) {
      now += 40;
      if (b.admit('k', 0)) written++;
    }
    b.close();
    expect(written + summed.reduce((a, n) => a + n, 0)).toBe(1240);

    // On the real clock, with a 50 ms window: the timer sums the rest up without another refusal.
    const timed: number[] = [];
    const t = new AlertBudget(Date.now, { burst: 1, perSecond: 0.001, maxBytes: Infinity, summaryEveryMs: 50 }, (_k, n) => timed.push(n));
    for (let i = 0; i < 6; i++) t.admit('k', 0);
    expect(timed).toEqual([1]);
    await new Promise((r) => setTimeout(r, 150));
    expect(timed).toEqual([1, 4]);
    t.close();
    expect(timed).toEqual([1, 4]);
  });

  it('forgets a key whose window passed with nothing pending and a full bucket', () => {
    let now = 0;
    const b = new AlertBudget(() => now, { burst: 2, perSecond: 1, maxBytes: Infinity, summaryEveryMs: 1000 });
    for (let i = 0; i < 3; i++) b.admit('gone', 0);
    expect(b.warning('gone')).toBe(1);
    now += 5_000;
    b.admit('other', 0);
    expect(b.size).toBe(1);
  });
});
