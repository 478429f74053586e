/** The one rule for which host rows a deploy targets, and the labels parsed once per distinct text. */
import { describe, expect, it } from '@jest/globals';
import { hostLabels, isTarget, targetsOf } from '../../server/deploy/host-targets.js';

describe('host targets', () => {
  it('parses each distinct labels text once, into a frozen object equal to its JSON', () => {
    const a = hostLabels('{"env":"production","zone":"a"}');
    expect(a).toEqual({ env: 'production', zone: 'a' });
    expect(hostLabels('{"env":"production","zone":"a"}')).toBe(a);
    expect(hostLabels('{"env":"production","zone":"b"}')).toEqual({ env: 'production', zone: 'b' });
    expect(Object.isFrozen(a)).toBe(true);
    expect(() => hostLabels('{not json')).toThrow(SyntaxError);
  });

  it('targets a host by its own environment label (env or environment) and every selector label', () => {
    const prodA = targetsOf('production', { zone: 'a' });
    expect(isTarget(prodA, hostLabels('{"env":"production","zone":"a"}'))).toBe(true);
    expect(isTarget(prodA, hostLabels('{"environment":"production","zone":"a","x":"y"}'))).toBe(true);
    expect(isTarget(prodA, hostLabels('{"env":"production","zone":"b"}'))).toBe(false);
    expect(isTarget(prodA, hostLabels('{"env":"production"}'))).toBe(false);
    // The selector cannot name the environment of another host: its own label decides.
    expect(isTarget(targetsOf('production', { env: 'production' }), hostLabels('{"env":"dev"}'))).toBe(false);
    expect(isTarget(targetsOf('production', {}), hostLabels('{"env":"dev","environment":"production"}'))).toBe(false);
    expect(isTarget(targetsOf('production', {}), hostLabels('{}'))).toBe(false);
  });
});
