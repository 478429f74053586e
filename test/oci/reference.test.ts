import { describe, expect, it } from '@jest/globals';
import { formatReference, parseReference } from '../../src/oci/reference.js';
import { parseChallenges } from '../../src/oci/challenge.js';

const D = 'sha256:' + '0a'.repeat(32);

describe('parseReference', () => {
  it.each([
    ['registry.example.com/team/app:1.0', { registry: 'registry.example.com', hostname: 'registry.example.com', repository: 'team/app', tag: '1.0' }],
    ['127.0.0.1:5000/app', { registry: '127.0.0.1:5000', hostname: '127.0.0.1', port: 5000, repository: 'app' }],
    [`localhost/a/b/c@${D}`, { registry: 'localhost', repository: 'a/b/c', digest: D }],
    [`reg.io:443/x:tag@${D}`, { port: 443, tag: 'tag', digest: D }],
    ['[::1]:5000/app:v1', { hostname: '::1', port: 5000, tag: 'v1' }],
    ['docker.io/nginx', { apiHost: 'registry-1.docker.io', repository: 'library/nginx' }],
  ])('parses %s', (ref, expected) => {
    expect(parseReference(ref)).toMatchObject(expected);
  });

  it('round-trips through formatReference', () => {
    expect(formatReference(parseReference(`reg.io:5000/a/b:t@${D}`))).toBe(`reg.io:5000/a/b:t@${D}`);
  });

  it.each([
    '',
    'app:1',
    'library/app',
    'https://reg.io/app',
    'reg.io/',
    'reg.io/App',
    'reg.io/app:',
    'reg.io/app:-bad',
    'reg.io/app@sha256:abc',
    'reg.io/app@md5:' + '0'.repeat(32),
    'reg.io:99999/app',
    'reg.io:x/app',
    'reg io/app',
    'reg.io/a//b',
    'reg.io/a/../b',
    '[::1/app',
    '-reg.io/app',
  ])('rejects %j with REFERENCE_INVALID', (ref) => {
    expect(() => parseReference(ref)).toThrow(expect.objectContaining({ code: 'REFERENCE_INVALID' }));
  });
});

describe('parseChallenges', () => {
  it('reads a distribution bearer challenge', () => {
    expect(parseChallenges('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' } },
    ]);
  });
  it('reads several challenges and escaped quotes', () => {
    const c = parseChallenges(['Basic realm="a \\"b\\""', 'Bearer realm=tok']);
    expect(c.map((x) => x.scheme)).toEqual(['basic', 'bearer']);
    expect(c[0].params.realm).toBe('a "b"');
    expect(c[1].params.realm).toBe('tok');
  });
  it('returns nothing for a missing header', () => {
    expect(parseChallenges(undefined)).toEqual([]);
  });
});
