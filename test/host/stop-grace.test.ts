import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { recordedStopGrace, recordRunStopGrace } from '../../host/lifecycle/stop-grace.js';
import { checkLifecycle } from '../../src/bundle/runtime-extras.js';

const root = mkdtempSync(join(tmpdir(), 'ct-grace-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('recorded stop_grace_period (ct host stop|restart)', () => {
  // Each value the manifest accepts is used as recorded; any other gives the caller's default.
  it.each([
    ['an integer', 3, 3],
    ['a fraction', 2.5, 2.5],
    ['a fraction below 1', 0.5, 0.5],
    ['zero', 0, 0],
    ['the maximum', 300, 300],
    ['above the maximum', 300.5, undefined],
    ['negative', -1, undefined],
    ['a string', '5', undefined],
  ])('%s (%p) in the agent\'s record or a ct run claim gives %p, as the manifest allows', async (_what, value, expected) => {
    const problems: unknown[] = [];
    checkLifecycle({ stop_grace_period: value }, 'runtime', problems as never);
    expect(problems.length === 0).toBe(expected !== undefined);
    const dir = mkdtempSync(join(root, 's-'));
    mkdirSync(join(dir, 'assigned'));
    writeFileSync(join(dir, 'assigned', 'ct-a.json'), JSON.stringify({ runtime: { stop_grace_period: value } }));
    expect(await recordedStopGrace(dir, 'ct-a')).toBe(expected);
    mkdirSync(join(dir, 'run-names', 'run-x'), { recursive: true });
    await recordRunStopGrace(join(dir, 'run-names', 'run-x'), value as number);
    expect(await recordedStopGrace(dir, 'run-x')).toBe(expected);
  });
});
