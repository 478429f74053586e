/**
 * Exempt-image patterns (src/k8s/exempt.ts) as operators write them and attackers name images:
 * what matches, what is refused at start, and a crafted name against many stars still answers
 * (the walk does not backtrack past the last star).
 */
import { describe, expect, it } from '@jest/globals';
import { parseExemptions, wildcardMatch } from '../../src/k8s/exempt.js';

describe('exempt images', () => {
  const e = parseExemptions(['docker.io/istio/proxyv2', 'ghcr.io/acme/agents/*', 'quay.io/acme/**', 'localhost:5000/acme/a-*-b', '[::1]:5000/acme/x', 'kind-registry:5000/acme/app']);

  it('matches the registry and repository the kubelet pulls, whatever the tag or digest', () => {
    expect(e.match('docker.io/istio/proxyv2:1.24.0')).toBe('docker.io/istio/proxyv2');
    expect(e.match(`docker.io/istio/proxyv2@sha256:${'a'.repeat(64)}`)).toBe('docker.io/istio/proxyv2');
    expect(e.match('ghcr.io/acme/agents/log-shipper:7')).toBe('ghcr.io/acme/agents/*');
    expect(e.match('quay.io/acme/a/b/c:1')).toBe('quay.io/acme/**');
    expect(e.match('localhost:5000/acme/a-zz-b')).toBe('localhost:5000/acme/a-*-b');
    expect(e.match('[::1]:5000/acme/x:1')).toBe('[::1]:5000/acme/x');
    expect(e.match('kind-registry:5000/acme/app:1')).toBe('kind-registry:5000/acme/app');
  });

  it('does not match short names, look-alikes, other depths or other registries', () => {
    for (const image of ['istio/proxyv2:1', 'index.docker.io/istio/proxyv2:1', 'Docker.io/istio/proxyv2', 'docker.io/istio/proxyv3', 'docker.io:443/istio/proxyv2',
      'ghcr.io/acme/agents/x/y', 'ghcr.io/acme/agents', 'quay.io/acme', 'quay.io/acme-evil/a', 'localhost:5001/acme/a-zz-b', 'garbage!!']) {
      expect({ image, match: e.match(image) }).toEqual({ image, match: undefined });
    }
  });

  it('refuses patterns that cover what anyone may register, or that could never match', () => {
    for (const p of ['*/x/y', 'docker.io/*', 'docker.io/*/*', 'ghcr.io/*/**', 'docker.io/istio*/proxyv2', 'istio/proxyv2', 'docker.io/nginx', 'index.docker.io/istio/proxyv2',
      'docker.io/istio/proxyv2:1.0', 'x.io/a@sha256:1', 'docker.io/a/**/b', 'docker.io/A/b', 'docker.io', '', 'r.io:0/a/b', 'r.io:70000/a/b', 'ghcr.io/acme/***', 'ghcr.io/acme/a*b*c*d*e*f',
      // a pull-through cache nests Docker Hub's accounts: a star before the last component covers them
      'harbor.corp/dockerhub-proxy/*/*', 'quay.io/acme/*/app', 'docker.io/istio/**', 'docker.io/a/b/c', `ghcr.io/acme/${'a'.repeat(129)}`]) {
      expect(() => parseExemptions([p])).toThrow(expect.objectContaining({ code: 'USAGE' }));
    }
    expect(() => parseExemptions(Array.from({ length: 65 }, (_, i) => `ghcr.io/acme/a${i}`))).toThrow(/at most 64/);
  });

  it('wildcard walk: right answers, including names built to make a backtracking matcher slow', () => {
    expect(wildcardMatch('a*b', 'ab')).toBe(true);
    expect(wildcardMatch('a*b', 'axxb')).toBe(true);
    expect(wildcardMatch('a*b', 'axxbc')).toBe(false);
    expect(wildcardMatch('*-*-agent', 'x-y-agent')).toBe(true);
    expect(wildcardMatch('*', '')).toBe(true);
    expect(wildcardMatch('', 'a')).toBe(false);
    expect(wildcardMatch('a*a*a*a*b', 'a'.repeat(255))).toBe(false);
    expect(wildcardMatch('*-*-*-*-agent', `${'-'.repeat(250)}agen`)).toBe(false);
  });
});
