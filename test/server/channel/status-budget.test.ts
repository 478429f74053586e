/**
 * StatusBudget (server/channel/status-budget.ts) on its own: what it holds for a host over its
 * budget is bounded, but a deployment's final status is never the one pushed out while a progress
 * status is held.
 */
import { describe, expect, it } from '@jest/globals';
import { MAX_HELD_STATUSES, StatusBudget } from '../../../server/channel/status-budget.js';

type S = { deploymentId: string; generation: number; state: string };
const FINAL = new Set(['running', 'refused', 'failed', 'stopped', 'suspended']);

async function offered(statuses: S[]): Promise<Map<string, string>> {
  const published = new Map<string, string>();
  // A budget large enough to come back within the test: 5 at once, 1000 a second.
  const sb = new StatusBudget<S>((_h, s) => published.set(s.deploymentId, s.state), { statusBurst: 5, statusPerSecond: 1000 }, Date.now, (s) => FINAL.has(s.state));
  for (const s of statuses) sb.offer('h1', s);
  // Published in order: the last one offered is the last one published.
  const last = statuses.at(-1)!.deploymentId;
  const end = Date.now() + 10_000;
  while (!published.has(last) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  // Anything still held is published by now: nothing more comes.
  await new Promise((r) => setTimeout(r, 200));
  sb.close();
  return published;
}

describe('statuses held over a host\'s budget', () => {
  it('publishes every final status of a legitimate burst (200 assignments refused at once)', async () => {
    const published = await offered(Array.from({ length: 200 }, (_, i) => ({ deploymentId: `d${i}`, generation: i, state: 'refused' })));
    // Before: 64 held at most, the oldest pushed out: 136 of these never published.
    expect(published.size).toBe(200);
  });

  it('past MAX_HELD_STATUSES pushes out progress statuses, never a final one while a progress one is held', async () => {
    const finals = Array.from({ length: 100 }, (_, i) => ({ deploymentId: `final-${i}`, generation: 1, state: 'failed' }));
    const progress = Array.from({ length: MAX_HELD_STATUSES + 200 }, (_, i) => ({ deploymentId: `progress-${i}`, generation: 1, state: 'created' }));
    const published = await offered([...finals, ...progress]);
    // Every final status was published, the oldest finals included.
    for (const f of finals) expect(published.get(f.deploymentId)).toBe('failed');
    // Still bounded: the oldest progress statuses made the room.
    const progressPublished = [...published.keys()].filter((k) => k.startsWith('progress-')).length;
    expect(progressPublished).toBeLessThan(progress.length);
    expect(published.has(`progress-${progress.length - 1}`)).toBe(true);
  });
});
