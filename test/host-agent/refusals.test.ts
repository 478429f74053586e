/**
 * When the agent believes the server's signed refusals (host/agent/refusals.ts): HOST_REMOVED at
 * once; HOST_UNKNOWN only once it answered every connection for the whole grace, on a monotonic
 * clock.
 */
import { describe, expect, it } from '@jest/globals';
import { Refusals, UNKNOWN_GRACE_MS } from '../../host/agent/refusals.js';
import { unknownGraceMinutesMs } from '../../src/cli/commands/host.js';
import { buildProgram } from '../../src/cli/program.js';
import { CtError } from '../../src/core/errors.js';

const HOST = '00000000-0000-4000-8000-000000000001';
const MIN = 60_000;

describe('the signed refusals an agent stops on', () => {
  it('HOST_REMOVED at once, saying to enrol anew', () => {
    const e = new Refusals(10 * MIN, () => 0).refused('HOST_REMOVED', HOST);
    expect(e?.code).toBe('HOST_REMOVED');
    expect(e?.message).toContain('ct host token');
  });

  it('HOST_UNKNOWN once every connection for the grace was answered so, saying to keep the state directory', () => {
    let t = 0;
    const r = new Refusals(10 * MIN, () => t);
    // One answer every 10 s (the backoff's cap), nothing else between: 60 answers in 10 minutes.
    for (; t < 10 * MIN; t += 10_000) expect(r.refused('HOST_UNKNOWN', HOST)).toBeUndefined();
    const e = r.refused('HOST_UNKNOWN', HOST);
    expect(e?.code).toBe('HOST_UNKNOWN');
    // Not HOST_REMOVED's "empty --state-dir" alone: a repaired database knows this id again.
    expect(e?.message).toContain('same --state-dir');
  });

  it('does not stop on answers that were not continuous: a connection without one between starts the grace again', () => {
    let t = 0;
    const r = new Refusals(10 * MIN, () => t);
    expect(r.refused('HOST_UNKNOWN', HOST)).toBeUndefined();
    t = 1_000;
    expect(r.refused('HOST_UNKNOWN', HOST)).toBeUndefined();
    // Then the server is down for 10 minutes: those connections end with no answer at all.
    for (let i = 0; i < 60; i++) r.interrupted();
    t = 11 * MIN;
    expect(r.refused('HOST_UNKNOWN', HOST)).toBeUndefined();
    t = 11 * MIN + 10_000;
    expect(r.refused('HOST_UNKNOWN', HOST)).toBeUndefined();
    // Counted from 11 min on: it stops at 21 min, not before.
    t = 21 * MIN - 1;
    expect(r.refused('HOST_UNKNOWN', HOST)).toBeUndefined();
    t = 21 * MIN;
    expect(r.refused('HOST_UNKNOWN', HOST)?.code).toBe('HOST_UNKNOWN');
  });

  it('needs at least 3 answers, however long the first two are apart', () => {
    let t = 0;
    const r = new Refusals(10 * MIN, () => t);
    expect(r.refused('HOST_UNKNOWN', HOST)).toBeUndefined();
    t = 60 * MIN;
    expect(r.refused('HOST_UNKNOWN', HOST)).toBeUndefined();
    expect(r.refused('HOST_UNKNOWN', HOST)?.code).toBe('HOST_UNKNOWN');
  });

  it('by default counts on a monotonic clock: the wall clock stepped forward an hour stops nothing', () => {
    const realNow = Date.now;
    let step = 0;
    // Replaced before the Refusals is made: a default that reads the wall clock would read this.
    Date.now = () => realNow() + step;
    try {
      const r = new Refusals();
      expect(r.refused('HOST_UNKNOWN', HOST)).toBeUndefined();
      step = 60 * MIN;
      expect(r.refused('HOST_UNKNOWN', HOST)).toBeUndefined();
      expect(r.refused('HOST_UNKNOWN', HOST)).toBeUndefined();
    } finally {
      Date.now = realNow;
    }
    expect(UNKNOWN_GRACE_MS).toBe(30 * MIN);
  });

  it('the grace is set with ct host run --unknown-grace, in whole minutes from 1 to 1440 (default 30)', async () => {
    expect(unknownGraceMinutesMs('30')).toBe(30 * MIN);
    expect(unknownGraceMinutesMs('1')).toBe(MIN);
    expect(unknownGraceMinutesMs('1440')).toBe(1440 * MIN);
    for (const bad of ['0', '1441', '1.5', '', '-10', '1e3', '30m', ' 30', '99999']) {
      try {
        unknownGraceMinutesMs(bad);
        throw new Error(`accepted ${JSON.stringify(bad)}`);
      } catch (e) {
        expect((e as CtError).code).toBe('USAGE');
      }
    }
    const program = await buildProgram(['node', 'ct']);
    const run = program.commands.find((c) => c.name() === 'host')?.commands.find((c) => c.name() === 'run');
    expect(run?.options.find((o) => o.long === '--unknown-grace')?.defaultValue).toBe('30');
  });
});
