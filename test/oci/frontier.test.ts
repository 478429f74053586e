/** The look-ahead gate of `ct fetch` (src/oci/blob-parts.ts Frontier). */
import { describe, expect, it } from '@jest/globals';
import { Frontier } from '../../src/oci/blob-parts.js';

const settled = async (p: Promise<void>): Promise<string> => {
  let state = 'pending';
  p.then(() => (state = 'resolved'), () => (state = 'rejected'));
  await new Promise((r) => setImmediate(r));
  return state;
};

describe('Frontier', () => {
  it('releases each waiter once the hash reaches its place, not before', async () => {
    const f = new Frontier();
    expect(await settled(f.reach(0))).toBe('resolved');
    expect(await settled(f.reach(-5))).toBe('resolved');
    const a = f.reach(10);
    const b = f.reach(20);
    f.advance(9);
    expect(await settled(a)).toBe('pending');
    f.advance(15);
    expect(await settled(a)).toBe('resolved');
    expect(await settled(b)).toBe('pending');
    f.advance(12); // never backwards
    expect(f.at).toBe(15);
    f.advance(20);
    expect(await settled(b)).toBe('resolved');
  });

  it('a failed fetch rejects every waiter and every later one', async () => {
    const f = new Frontier();
    const a = f.reach(100);
    f.fail(new Error('stopped'));
    await expect(a).rejects.toThrow('stopped');
    await expect(f.reach(0)).rejects.toThrow('stopped');
    f.fail(new Error('second')); // the first failure stays
    await expect(f.reach(1)).rejects.toThrow('stopped');
  });
});
