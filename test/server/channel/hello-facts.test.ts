/**
 * A host's facts are judged by the server's policies for every deploy to its environment: a hello
 * whose facts lack what policies read (a broken or compromised host) is refused at the handshake,
 * and facts stored some other way (enrolment takes any object) read as "not available" rather
 * than throwing in the middle of a deploy or a promotion.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { policyHostFacts } from '../../../src/protocol/policy-facts.js';
import { hostFactsProblem } from '../../../src/protocol/host-facts.js';
import type { HostFacts } from '../../../src/protocol/messages.js';
import { FACTS, channelServer, until, type ChannelServer } from './support.js';

describe('the facts in a host hello', () => {
  let server: ChannelServer;
  beforeAll(async () => void (server = await channelServer()), 60_000);
  afterAll(async () => server?.close());

  it('are refused without the fields policies read, and the host stays unconnected; whole facts connect', async () => {
    const broken = await server.agent(server.url, { facts: async () => ({ kernel: '6.1.0', architecture: 'amd64' }) as unknown as HostFacts });
    await new Promise((r) => setTimeout(r, 1500));
    expect(server.hub.connected(server.hostId)).toBeUndefined();
    expect(broken.connected()).toBe(false);
    await broken.stop();
    const whole = await server.agent(server.url);
    await until('the host with whole facts connected', () => Boolean(server.hub.connected(server.hostId)));
    // What the deploy's policy step reads from the connected host.
    expect(policyHostFacts(server.hub.connected(server.hostId), 'production')).toMatchObject({ seccomp: true, cgroup: 'v1', arch: 'amd64' });
    await whole.stop();
  }, 20_000);

  it('are checked for type and size, not for what the host says it can do', () => {
    expect(hostFactsProblem(FACTS)).toBeUndefined();
    expect(hostFactsProblem({ ...FACTS, selinux: undefined })).toBeUndefined();
    expect(hostFactsProblem({ ...FACTS, seccomp: { available: 'yes', actions: [] } })).toMatch(/seccomp/);
    expect(hostFactsProblem({ ...FACTS, cgroup: { version: 'v3' } })).toMatch(/cgroup/);
    expect(hostFactsProblem({ ...FACTS, kernel: 'k'.repeat(10_000) })).toMatch(/kernel/);
    expect(hostFactsProblem([])).toMatch(/object/);
  });

  it('stored as any object (enrolment) read as nothing available, not as a TypeError', () => {
    expect(policyHostFacts({} as HostFacts, 'production')).toEqual({
      environment: 'production', seccomp: false, apparmor: { present: false, enforcing: false }, selinux: { present: false, enforcing: false }, ebpf: false,
    });
    expect(policyHostFacts({ seccomp: null, apparmor: 'on', cgroup: { version: 7 } } as unknown as HostFacts, 'production')).toMatchObject({ seccomp: false, apparmor: { present: false } });
  });
});
