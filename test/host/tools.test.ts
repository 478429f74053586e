/**
 * host/runtime/tools.ts: every program the host runs goes through runTool, whose output is
 * bounded (a flood once grew one string until V8 threw and the agent exited) without cutting off
 * what real tools print.
 */
import { describe, expect, it } from '@jest/globals';
import { runTool } from '../../host/runtime/tools.js';

describe('runTool', () => {
  it('kills a flood past its bound and answers at once, even when a process it started holds the pipes', async () => {
    // `yes & wait`: killing sh leaves yes writing to the pipes, so 'close' never comes.
    const r = await runTool('sh', ['-c', 'yes & wait'], { timeoutMs: 60_000, keepOutputBytes: 4096, maxOutputBytes: 1 << 20 });
    expect(r).toMatchObject({ overflowed: true, signal: 'SIGKILL' });
    expect(r.timedOut).toBeUndefined();
    expect(r.stdout).toHaveLength(4096);
    expect(r.stdout.endsWith('y\n')).toBe(true);
    const e = await runTool('sh', ['-c', 'yes >&2'], { timeoutMs: 60_000, keepOutputBytes: 100, maxOutputBytes: 1 << 20 });
    expect(e).toMatchObject({ overflowed: true });
    expect(e.stderr).toHaveLength(100);
  }, 30_000);

  it('gives a large honest output whole (iptables-save on a node with many rules prints tens of MB)', async () => {
    const r = await runTool('sh', ['-c', 'head -c 30000000 /dev/zero | tr "\\0" x; echo'], { timeoutMs: 60_000 });
    expect(r.code).toBe(0);
    expect(r.overflowed).toBeUndefined();
    expect(r.stdout).toHaveLength(30_000_001);
  }, 30_000);

  it('a timeout is a timeout, not an overflow', async () => {
    const r = await runTool('sleep', ['30'], { timeoutMs: 200 });
    expect(r).toMatchObject({ timedOut: true });
    expect(r.overflowed).toBeUndefined();
  });
});
