import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { PolicyStore, type ReloadOutcome } from '../../src/policy/store.js';
import { PolicyRefresh } from '../../host/agent/policy-refresh.js';

/** A real store whose loads wait for the test to let them through (a slow or hung policy directory). */
class GatedStore extends PolicyStore {
  loads = 0;
  private gates: Array<() => void> = [];
  constructor(dir: string, private gated = false) {
    super([dir]);
  }
  hold(): void {
    this.gated = true;
  }
  release(): void {
    this.gated = false;
    for (const open of this.gates.splice(0)) open();
  }
  override async reload(): Promise<ReloadOutcome> {
    this.loads++;
    if (this.gated) await new Promise<void>((r) => this.gates.push(r));
    return super.reload();
  }
}

const policy = (name: string) => ['apiVersion: cerro-torre.dev/v2', 'kind: Policy', `name: ${name}`, 'match:', '  environments: [local]', 'signers:', '  - issuer: https://token.actions.githubusercontent.com', '    subject: https://github.com/o/r/.github/workflows/b.yml@refs/heads/main', 'attestations:', '  - predicateType: https://slsa.dev/provenance/v1', ''].join('\n');

describe('host agent policy refresh', () => {
  let dir: string;
  let store: GatedStore;
  let lines: string[];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ct-refresh-'));
    writeFileSync(join(dir, 'a.policy.yaml'), policy('a'));
    store = new GatedStore(dir);
    lines = [];
  });
  afterEach(() => {
    store.release();
    rmSync(dir, { recursive: true, force: true });
  });

  it('rechecks on a monotonic clock: a wall clock stepped back (NTP) does not stop the reloads', async () => {
    const refresh = new PolicyRefresh(store, { source: dir, log: (l) => lines.push(l), recheckMs: 20 });
    expect((await refresh.reload()).ok).toBe(true);
    const realNow = Date.now;
    Date.now = () => realNow() - 3_600_000;
    try {
      await delay(40);
      writeFileSync(join(dir, 'b.policy.yaml'), policy('b'));
      await refresh.beforeJudge();
    } finally {
      Date.now = realNow;
    }
    expect(store.loads).toBe(2);
    expect(store.current?.policies.map((p) => p.name).sort()).toEqual(['a', 'b']);
  });

  it('judges an assignment arriving during a SIGHUP reload by the set that reload reads', async () => {
    const refresh = new PolicyRefresh(store, { source: dir, log: (l) => lines.push(l), recheckMs: 60_000 });
    expect((await refresh.reload()).ok).toBe(true);
    writeFileSync(join(dir, 'b.policy.yaml'), policy('b'));
    store.hold();
    const hup = refresh.reload();
    let judged = false;
    const judge = refresh.beforeJudge().then(() => {
      judged = true;
    });
    await delay(50);
    expect(judged).toBe(false);
    store.release();
    await judge;
    expect(store.current?.policies.map((p) => p.name).sort()).toEqual(['a', 'b']);
    await hup;
  });

  it('a load that never ends delays an assignment by judgeWaitMs at most, once: the last good set judges, said once', async () => {
    const refresh = new PolicyRefresh(store, { source: dir, log: (l) => lines.push(l), recheckMs: 0, judgeWaitMs: 400 });
    expect((await refresh.reload()).ok).toBe(true);
    const good = store.current?.digest;
    store.hold();
    const t0 = performance.now();
    await refresh.beforeJudge();
    await refresh.beforeJudge();
    expect(performance.now() - t0).toBeLessThan(2_000);
    expect(store.current?.digest).toBe(good);
    // The hung load is neither started again nor waited for again: later assignments go at once.
    expect(store.loads).toBe(2);
    let waited = 0;
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      await refresh.beforeJudge();
      waited = Math.max(waited, performance.now() - t);
    }
    expect(waited).toBeLessThan(200);
    expect(store.loads).toBe(2);
    expect(lines).toEqual([expect.stringContaining(`assignments are judged by the last good set (${good})`)]);
  });

  it('a load that throws is a failed load: the last good set stays and a queued reload still reads again', async () => {
    const refresh = new PolicyRefresh(store, { source: dir, log: (l) => lines.push(l), recheckMs: 60_000 });
    expect((await refresh.reload()).ok).toBe(true);
    const good = store.current?.digest;
    const real = store.reload.bind(store);
    let fail = true;
    store.reload = async () => {
      if (fail) {
        fail = false;
        await delay(20);
        throw Object.assign(new Error('EIO boom'), { code: 'EIO' });
      }
      return real();
    };
    const first = refresh.reload();
    writeFileSync(join(dir, 'b.policy.yaml'), policy('b'));
    const queued = refresh.reload();
    expect(await first).toMatchObject({ ok: false, digest: good, error: { code: 'IO_ERROR' } });
    expect((await queued).ok).toBe(true);
    await expect(refresh.beforeJudge()).resolves.toBeUndefined();
    expect(store.current?.policies.map((p) => p.name).sort()).toEqual(['a', 'b']);
  });
});
