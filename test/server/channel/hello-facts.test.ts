/**
 * A host's facts are judged by the server's policies for every deploy to its environment: a hello
 * whose facts lack what policies read (a broken or compromised host) is refused at the handshake,
 * and facts stored some other way (enrolment takes any object) read as "not available" rather
 * than throwing in the middle of a deploy or a promotion.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { policyHostFacts } from '../../../src/protocol/policy-facts.js';
import { hostFactsProblem, knownHostFacts } from '../../../src/protocol/host-facts.js';
import { collectFacts } from '../../../host/facts.js';
import { generateKeyPairSync } from 'node:crypto';
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

  it('are stored and listed with the protocol\'s fields only: a host\'s extra fields (to the 64 KB hello) are not kept, nor at enrolment', async () => {
    const padded = { ...FACTS, kernel: '6.1.0-padded', extra: 'x'.repeat(60_000), runc: { ...FACTS.runc, vendor: 'y'.repeat(1000) } } as unknown as HostFacts;
    const agent = await server.agent(server.url, { facts: async () => padded });
    try {
      await until('the host connected', () => Boolean(server.hub.connected(server.hostId)));
      await until('its facts stored', async () => JSON.parse((await server.ctx.db.query<{ facts: string }>('SELECT facts FROM hosts WHERE id = ?', [server.hostId]))[0].facts).kernel === '6.1.0-padded');
      const [row] = await server.ctx.db.query<{ facts: string }>('SELECT facts FROM hosts WHERE id = ?', [server.hostId]);
      expect(row.facts.length).toBeLessThan(2000);
      const res = await fetch(`${server.url}/api/v1/hosts`, { headers: { authorization: `Bearer ${server.adminKey}` } });
      const { hosts } = (await res.json()) as { hosts: { id: string; facts: Record<string, unknown> }[] };
      const facts = hosts.find((h) => h.id === server.hostId)!.facts;
      expect(facts).not.toHaveProperty('extra');
      expect(facts.runc).toEqual({ present: true, version: '1.1.12' });
      expect(server.hub.connected(server.hostId)).not.toHaveProperty('extra');
      // Enrolment keeps the same fields (and nothing of facts without what policies read).
      const admin = { authorization: `Bearer ${server.adminKey}`, 'content-type': 'application/json' };
      const enrol = async (name: string, f: unknown) => {
        const { token } = (await (await fetch(`${server.url}/api/v1/hosts/tokens`, { method: 'POST', headers: admin, body: JSON.stringify({ labels: {} }) })).json()) as { token: string };
        const publicKey = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
        const r = await fetch(`${server.url}/api/v1/hosts/enroll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token, name, publicKey, facts: f }) });
        expect(r.status).toBe(201);
        return ((await r.json()) as { hostId: string }).hostId;
      };
      const whole = await enrol('padded-enrolment', padded);
      const partial = await enrol('partial-enrolment', { extra: 'x'.repeat(60_000) });
      const stored = async (id: string) => JSON.parse((await server.ctx.db.query<{ facts: string }>('SELECT facts FROM hosts WHERE id = ?', [id]))[0].facts) as Record<string, unknown>;
      expect(await stored(whole)).toEqual({ ...FACTS, kernel: '6.1.0-padded', ebpf: { tracefs: false, bpffs: false, bpftrace: false, usable: false } });
      expect(await stored(partial)).toEqual({});
    } finally {
      await agent.stop();
    }
  }, 20_000);

  it('bound every string, optional ones too, and keep what a real host measures whole', async () => {
    for (const [path, long] of [
      ['runc.version', { ...FACTS, runc: { present: true, version: 'v'.repeat(257) } }],
      ['apparmor.reason', { ...FACTS, apparmor: { ...FACTS.apparmor, reason: 'r'.repeat(100_000) } }],
      ['ebpf.bpftraceVersion', { ...FACTS, ebpf: { ...FACTS.ebpf, bpftraceVersion: 'b'.repeat(257) } }],
      ['selinux.reason', { ...FACTS, selinux: { present: false, enforcing: false, reason: 's'.repeat(257) } }],
      ['cgroup.unifiedMount', { ...FACTS, cgroup: { version: 'v2', unifiedMount: 7 } }],
    ] as const) expect(hostFactsProblem(long)).toMatch(path);
    const real = JSON.parse(JSON.stringify(await collectFacts())) as HostFacts;
    expect(hostFactsProblem(real)).toBeUndefined();
    expect(knownHostFacts(real)).toEqual(real);
  }, 30_000);

  it('stored as any object (enrolment) read as nothing available, not as a TypeError', () => {
    expect(policyHostFacts({} as HostFacts, 'production')).toEqual({
      environment: 'production', seccomp: false, apparmor: { present: false, enforcing: false }, selinux: { present: false, enforcing: false }, ebpf: false,
    });
    expect(policyHostFacts({ seccomp: null, apparmor: 'on', cgroup: { version: 7 } } as unknown as HostFacts, 'production')).toMatchObject({ seccomp: false, apparmor: { present: false } });
  });
});
