/**
 * The note a host sends when an app's name is no DNS name: the server cuts host notes at 200
 * characters, so the name in it is cut first and the explanation always arrives whole.
 */
import { describe, expect, it } from '@jest/globals';
import { networkNote } from '../../host/agent/network-hook.js';

describe('networkNote', () => {
  it('explains a dotted name in full within the server’s 200 characters, however long the name', () => {
    const long = networkNote({ network: 'bridge' } as never, `${'a'.repeat(200)}.v2`)!;
    expect(long.length).toBeLessThanOrEqual(200);
    expect(long).toMatch(/^app "a{40}…" has no DNS name .* by address only$/);
    expect(networkNote({ network: 'bridge' } as never, 'api.v2')).toMatch(/^app "api\.v2" has no DNS name/);
    expect(networkNote({ network: 'bridge' } as never, 'api')).toBeUndefined();
    expect(networkNote({ network: 'none' } as never, 'api.v2')).toBeUndefined();
  });
});
