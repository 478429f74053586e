import { describe, expect, it } from '@jest/globals';
import { currentPin, setBundle } from '../../src/promote/desired-edit.js';
import { codeOf } from '../support/error-code.js';
import { desiredState, REGISTRY } from './fixtures.js';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const D3 = `sha256:${'3'.repeat(64)}`;
const ref = (d: string) => `${REGISTRY}@${d}`;

function changedLines(a: string, b: string): [string, string][] {
  const x = a.split('\n');
  const y = b.split('\n');
  expect(y.length).toBe(x.length);
  return x.flatMap((l, i) => (l === y[i] ? [] : [[l, y[i]] as [string, string]]));
}

describe('desired-state edit (yaml document API, spliced in place)', () => {
  const text = desiredState(ref(D1), ref(D2));

  it('changes exactly the bundle line, keeping its quoting, comment and every other byte', () => {
    const r = setBundle(text, { environment: 'staging', app: 'hello', bundle: ref(D3) });
    expect(r.changed).toBe(true);
    expect(r.previous).toEqual({ bundle: ref(D1) });
    expect(changedLines(text, r.text)).toEqual([[`        bundle: "${ref(D1)}"   # pinned by CI`, `        bundle: "${ref(D3)}"   # pinned by CI`]]);
    const p = setBundle(text, { environment: 'production', app: 'hello', bundle: ref(D3) });
    expect(changedLines(text, p.text)).toEqual([[`        bundle: ${ref(D2)}`, `        bundle: ${ref(D3)}`]]);
    expect(currentPin(p.text, 'production', 'hello')).toEqual({ bundle: ref(D3) });
  });

  it('is idempotent: the same pin again changes nothing', () => {
    const once = setBundle(text, { environment: 'staging', app: 'hello', bundle: ref(D3) });
    const twice = setBundle(once.text, { environment: 'staging', app: 'hello', bundle: ref(D3) });
    expect(twice.changed).toBe(false);
    expect(twice.text).toBe(once.text);
  });

  it('adds bundleDigest as one new line under bundle, then edits it in place', () => {
    const a = setBundle(text, { environment: 'staging', app: 'hello', bundle: ref(D3), bundleDigest: D1 });
    const lines = a.text.split('\n');
    const i = lines.findIndex((l) => l.includes(ref(D3)));
    expect(lines[i + 1]).toBe(`        bundleDigest: ${D1}`);
    expect(lines.length).toBe(text.split('\n').length + 1);
    const b = setBundle(a.text, { environment: 'staging', app: 'hello', bundle: ref(D2), bundleDigest: D2 });
    expect(changedLines(a.text, b.text).map(([, n]) => n.trim())).toEqual([`bundle: "${ref(D2)}"   # pinned by CI`, `bundleDigest: ${D2}`]);
    // A pinned bundleDigest cannot be left stale.
    expect(codeOf(() => setBundle(a.text, { environment: 'staging', app: 'hello', bundle: ref(D2) }))).toBe('USAGE');
  });

  it('refuses a file that does not parse, an app or environment that is missing', () => {
    expect(codeOf(() => setBundle(`${text}\n  bad: [unclosed\n`, { environment: 'staging', app: 'hello', bundle: ref(D3) }))).toBe('PROMOTE_YAML_INVALID');
    expect(codeOf(() => setBundle('environments:\n  a: 1\n  a: 2\n', { environment: 'a', app: 'hello', bundle: ref(D3) }))).toBe('PROMOTE_YAML_INVALID');
    expect(codeOf(() => setBundle(text, { environment: 'staging', app: 'nope', bundle: ref(D3) }))).toBe('PROMOTE_APP_MISSING');
    expect(codeOf(() => setBundle(text, { environment: 'qa', app: 'hello', bundle: ref(D3) }))).toBe('PROMOTE_APP_MISSING');
    expect(codeOf(() => setBundle(text, { environment: 'staging', app: 'hello', bundle: 'hello:latest' }))).toBe('USAGE');
  });

  it('refuses anchors, aliases and merge keys around the edited node', () => {
    const anchoredApp = `environments:\n  staging:\n    apps:\n      hello: &h\n        bundle: ${ref(D1)}\n  production:\n    apps:\n      hello: *h\n`;
    expect(codeOf(() => setBundle(anchoredApp, { environment: 'staging', app: 'hello', bundle: ref(D3) }))).toBe('PROMOTE_YAML_ALIAS');
    expect(codeOf(() => setBundle(anchoredApp, { environment: 'production', app: 'hello', bundle: ref(D3) }))).toBe('PROMOTE_YAML_ALIAS');
    const aliasedScalar = `x: &b ${ref(D1)}\nenvironments:\n  staging:\n    apps:\n      hello:\n        bundle: *b\n`;
    expect(codeOf(() => setBundle(aliasedScalar, { environment: 'staging', app: 'hello', bundle: ref(D3) }))).toBe('PROMOTE_YAML_ALIAS');
    const merged = `base: &base\n  hosts: { env: staging }\nenvironments:\n  staging:\n    apps:\n      hello:\n        <<: *base\n        bundle: ${ref(D1)}\n`;
    expect(codeOf(() => setBundle(merged, { environment: 'staging', app: 'hello', bundle: ref(D3) }))).toBe('PROMOTE_YAML_ALIAS');
    // An anchor elsewhere in the file is no obstacle.
    const elsewhere = `defaults: &d { env: staging }\nenvironments:\n  staging:\n    apps:\n      hello:\n        bundle: ${ref(D1)}\n        hosts: *d\n`;
    expect(setBundle(elsewhere, { environment: 'staging', app: 'hello', bundle: ref(D3) }).text).toBe(elsewhere.replace(D1, D3));
  });
});
