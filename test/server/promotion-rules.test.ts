/** `promotion:` rules of the desired state: durations parsed and bounded, bad rules refused with the file and place. */
import { describe, expect, it } from '@jest/globals';
import { mergeRules, parseDuration, parsePromotionRules } from '../../server/promotion/rules.js';
import { parseDesiredFiles } from '../../server/gitops/desired-state.js';
import { codeOf } from '../support/error-code.js';

describe('promotion rules', () => {
  it('parses durations and refuses what is not one or exceeds 7 days', () => {
    expect(parseDuration('30m')).toBe(1_800_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('45s')).toBe(45_000);
    expect(parseDuration('0s')).toBe(0);
    expect(parseDuration('7d')).toBe(7 * 86_400_000);
    for (const bad of ['8d', '', '30', 'm', '1h 30m', '-1s', '1.5h', '30M', 30, '9'.repeat(30) + 's', '1s1h']) expect(parseDuration(bad)).toBeUndefined();
  });

  it('accepts one rule or a list, and refuses bad ones naming where', () => {
    expect(parsePromotionRules({ from: 'staging', to: 'production', after: '30m' }, 'f.yaml')).toEqual([{ from: 'staging', to: 'production', afterMs: 1_800_000, file: 'f.yaml' }]);
    expect(parsePromotionRules([{ from: 'dev', to: 'staging' }], 'f.yaml')[0].afterMs).toBe(0);
    expect(parsePromotionRules(undefined, 'f.yaml')).toEqual([]);
    const bad = (v: unknown) => { try { parsePromotionRules(v, 'f.yaml'); return undefined; } catch (e) { return (e as Error).message; } };
    expect(bad({ from: 'staging', to: 'staging' })).toMatch(/same environment/);
    expect(bad({ from: 'staging', to: 'production', after: '9d' })).toMatch(/promotion\.after: must be a duration/);
    expect(bad([{ from: 'a', to: 'b' }, { from: 'a', to: 'b' }])).toMatch(/declared twice/);
    expect(bad({ from: 'a', to: 'b', extra: 1 })).toMatch(/unknown key extra/);
    expect(bad({ from: 'A B', to: 'b' })).toMatch(/from: must be an environment name/);
    expect(bad(Array.from({ length: 33 }, (_, i) => ({ from: `e${i}`, to: 'x' })))).toMatch(/at most 32/);
    expect(codeOf(() => mergeRules([parsePromotionRules({ from: 'a', to: 'b' }, 'one.yaml'), parsePromotionRules({ from: 'a', to: 'b' }, 'two.yaml')]))).toBe('MANIFEST_INVALID');
  });

  it('the desired state carries the rules and the file each app is declared in', () => {
    const ref = `reg.example/acme/hello@sha256:${'a'.repeat(64)}`;
    const text = `environments:\n  staging:\n    apps:\n      hello: { bundle: ${ref} }\npromotion:\n  - { from: staging, to: production, after: 2s }\n`;
    const s = parseDesiredFiles([{ name: 'deploy/state.yaml', text }]);
    expect(s.promotions).toEqual([{ from: 'staging', to: 'production', afterMs: 2000, file: 'deploy/state.yaml' }]);
    expect(s.apps[0].file).toBe('deploy/state.yaml');
    expect(codeOf(() => parseDesiredFiles([{ name: 'x.yaml', text: text.replace('2s', 'soon') }]))).toBe('MANIFEST_INVALID');
  });

  it('reads `suspended: true` of an app and refuses anything but a boolean', () => {
    const ref = `reg.example/acme/hello@sha256:${'a'.repeat(64)}`;
    const doc = (v: string) => [{ name: 'd.yaml', text: `environments:\n  prod:\n    apps:\n      hello: { bundle: ${ref}, suspended: ${v} }\n` }];
    expect(parseDesiredFiles(doc('true')).apps[0].suspended).toBe(true);
    expect(parseDesiredFiles(doc('false')).apps[0].suspended).toBeUndefined();
    for (const bad of ['"yes"', '1', '[true]']) expect(codeOf(() => parseDesiredFiles(doc(bad)))).toBe('MANIFEST_INVALID');
  });
});
