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
});
