/**
 * Image names without a registry host, as pods carry them (`nginx:1.25`, `myorg/app`), are what the
 * kubelet pulls from Docker Hub: the webhooks judge that image, under the same rule containerd and
 * CRI-O apply (distribution/reference ParseNormalizedNamed).
 */
import { describe, expect, it } from '@jest/globals';
import { kubeletImageName } from '../../src/k8s/image-name.js';
import { parseReference } from '../../src/oci/reference.js';

describe('image names as the kubelet completes them', () => {
  it('completes a name without a host to Docker Hub, and leaves one with a host as it is', () => {
    const cases: [string, string][] = [
      ['nginx', 'docker.io/library/nginx'],
      ['nginx:1.25', 'docker.io/library/nginx:1.25'],
      [`nginx@sha256:${'a'.repeat(64)}`, `docker.io/library/nginx@sha256:${'a'.repeat(64)}`],
      ['myorg/app:1.0', 'docker.io/myorg/app:1.0'],
      ['myorg/team/app', 'docker.io/myorg/team/app'],
      ['docker.io/library/nginx', 'docker.io/library/nginx'],
      ['index.docker.io/library/nginx:1', 'docker.io/library/nginx:1'],
      ['ghcr.io/acme/app:1', 'ghcr.io/acme/app:1'],
      ['registry.local:5000/app', 'registry.local:5000/app'],
      ['localhost/app', 'localhost/app'],
      ['127.0.0.1:5000/acme/hello:1.0.0', '127.0.0.1:5000/acme/hello:1.0.0'],
      ['MyRegistry/app', 'MyRegistry/app'],
    ];
    expect(cases.map(([image]) => [image, kubeletImageName(image)])).toEqual(cases);
    expect(parseReference(kubeletImageName('nginx:1.25'))).toMatchObject({ registry: 'docker.io', repository: 'library/nginx', tag: '1.25' });
  });
});
