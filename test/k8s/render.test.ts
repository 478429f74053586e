import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { openCtp } from '../../src/bundle/read.js';
import { profileNameFor } from '../../src/profiles/apparmor/names.js';
import { bundleFactsFromArchive } from '../../src/policy/bundle-facts.js';
import { renderK8s } from '../../src/k8s/render.js';
import { toAbstract } from '../../src/k8s/apparmor-abstract.js';
import { runCt } from '../support/cli.js';
import { k8sFixture, type K8sFixture } from './fixture.js';
import { parseYamlDocs, validateK8s } from './schema.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let fx: K8sFixture;
beforeAll(async () => {
  fx = await k8sFixture();
}, 120_000);
afterAll(async () => fx?.cleanup());

describe('ct k8s render', () => {
  it('a .ctp file: SPO SeccompProfile + AppArmorProfile and a digest-pinned Deployment, all schema-valid', async () => {
    const r = await runCt(['k8s', 'render', fx.bundles.v1Path, '--trust-store', fx.trustStorePath, '--repository', `${fx.registry.host}/acme/hello`, '--namespace', 'shop', '--replicas', '3']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const docs = parseYamlDocs(r.stdout) as Obj[];
    expect(docs.map((d) => d.kind)).toEqual(['SeccompProfile', 'AppArmorProfile', 'Deployment']);
    for (const d of docs) expect(await validateK8s(d)).toEqual([]);
    const name = profileNameFor('hello', fx.digests.v1);
    const [sp, aa, dep] = docs;
    expect(sp.metadata.name).toBe(name);
    expect(sp.metadata.namespace).toBeUndefined(); // cluster-scoped in current SPO
    expect(sp.spec.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(sp.spec.syscalls.flatMap((s: Obj) => s.names)).toContain('read');
    expect(aa.spec.abstract).toEqual({
      executable: { allowedExecutables: ['/bin/busybox'] },
      filesystem: { readOnlyPaths: ['/app/**'], readWritePaths: ['/tmp/**'] },
      network: { allowedProtocols: { allowTcp: true } },
      capability: { allowedCapabilities: ['net_bind_service'] },
    });
    expect(dep.metadata).toMatchObject({ name: 'hello', namespace: 'shop', annotations: { 'cerro-torre.dev/bundle-digest': fx.bundles.v1, 'cerro-torre.dev/image-digest': fx.digests.v1 } });
    expect(dep.spec.replicas).toBe(3);
    const c = dep.spec.template.spec.containers[0];
    expect(c).toMatchObject({
      image: `${fx.registry.host}/acme/hello@${fx.digests.v1}`,
      command: ['/app/run'],
      ports: [{ containerPort: 8080, protocol: 'TCP' }],
      securityContext: {
        privileged: false,
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        runAsUser: 65534,
        runAsGroup: 65534,
        runAsNonRoot: true,
        capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] },
        seccompProfile: { type: 'Localhost', localhostProfile: `operator/${name}.json` },
        appArmorProfile: { type: 'Localhost', localhostProfile: name },
      },
    });
  });

  it('a registry reference: fetched through the guarded client, repository taken from the reference', async () => {
    const r = await runCt(['k8s', 'render', fx.refs.v2, '--trust-store', fx.trustStorePath, '--allow-registry', fx.registry.host, '--allow-address', '127.0.0.1', '--plain-http']);
    expect(r.code).toBe(0);
    const dep = (parseYamlDocs(r.stdout) as Obj[]).find((d) => d.kind === 'Deployment')!;
    expect(dep.spec.template.spec.containers[0].image).toBe(fx.refs.v2);
    expect(await validateK8s(dep)).toEqual([]);
    // Not on the allow-list: refused before any request.
    const refused = await runCt(['k8s', 'render', fx.refs.v2, '--trust-store', fx.trustStorePath, '--allow-registry', 'registry.example.com', '--allow-address', '127.0.0.1', '--plain-http']);
    expect(refused.code).toBe(12);
    expect(refused.stderr).toMatch(/REGISTRY_NOT_ALLOWED/);
  });

  it('--no-apparmor (nodes without AppArmor): no AppArmorProfile, no appArmorProfile, a warning; the seccomp profile stays', async () => {
    const r = await runCt(['k8s', 'render', fx.bundles.v1Path, '--trust-store', fx.trustStorePath, '--repository', `${fx.registry.host}/acme/hello`, '--no-apparmor']);
    expect(r.code).toBe(0);
    const docs = parseYamlDocs(r.stdout) as Obj[];
    expect(docs.map((d) => d.kind).sort()).toEqual(['Deployment', 'SeccompProfile']);
    const sc = docs.find((d) => d.kind === 'Deployment')!.spec.template.spec.containers[0].securityContext;
    expect(sc.appArmorProfile).toBeUndefined();
    expect(sc.seccompProfile).toMatchObject({ type: 'Localhost' });
    expect(r.stderr).toMatch(/warning: the bundle's AppArmor profile \S+ is not rendered/);
  });

  it('a namespace Kubernetes would refuse is refused before anything is fetched', async () => {
    for (const ns of ['Shop', 'shop_prod', `${'a'.repeat(64)}`, '-shop', '']) {
      const r = await runCt(['k8s', 'render', fx.bundles.v1Path, '--trust-store', fx.trustStorePath, '--repository', `${fx.registry.host}/acme/hello`, '--namespace', ns]);
      expect([r.code, r.stdout]).toEqual([1, '']);
      expect(r.stderr).toMatch(/USAGE.*--namespace .*not a namespace name/);
    }
  });

  it('a tampered bundle is not rendered', async () => {
    const out = `${fx.dir}/tampered-render.ctp`;
    const f = await runCt(['fetch', fx.refs.tampered, '-o', out, '--allow-registry', fx.registry.host, '--allow-address', '127.0.0.1', '--plain-http']);
    expect(f.code).toBe(0);
    const r = await runCt(['k8s', 'render', out, '--trust-store', fx.trustStorePath, '--repository', `${fx.registry.host}/acme/evil`]);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/REJECTED/);
  });

  it('AppArmor rules SPO cannot express are refused, or listed when accepted; other profile gaps refused', async () => {
    const facts = bundleFactsFromArchive(await openCtp(fx.bundles.v1Path));
    const base = { imageDigest: fx.digests.v1, bundleDigest: fx.bundles.v1, repository: `${fx.registry.host}/acme/hello` };
    const withDeny = { ...facts, security: { ...facts.security, apparmor: 'profile x {\n  /app/** r,\n  deny /etc/shadow r,\n  signal (receive) peer=unconfined,\n}\n' } };
    expect(() => renderK8s({ ...base, facts: withDeny })).toThrow(expect.objectContaining({ code: 'PROFILE_INVALID' }) as unknown as Error);
    const partial = renderK8s({ ...base, facts: withDeny, allowPartialAppArmor: true });
    expect(partial.warnings.join('\n')).toMatch(/2 rules .*deny \/etc\/shadow r/);
    const errno = { ...facts, security: { ...facts.security, seccomp: { ...(facts.security!.seccomp as Obj), defaultErrnoRet: 38 } } };
    expect(() => renderK8s({ ...base, facts: errno })).toThrow(expect.objectContaining({ code: 'PROFILE_INVALID' }) as unknown as Error);
    expect(toAbstract('profile x {\n  /usr/lib/** mr,\n  /data/** w,\n  network inet udp,\n  network raw,\n}\n').abstract).toEqual({
      executable: { allowedLibraries: ['/usr/lib/**'] },
      filesystem: { readOnlyPaths: ['/usr/lib/**'], writeOnlyPaths: ['/data/**'] },
      network: { allowRaw: true, allowedProtocols: { allowUdp: true } },
    });
  });

  it('the manifest\'s health check, resources and stop grace period become the probe, limits and grace period; what a Deployment cannot express is said', async () => {
    const facts = bundleFactsFromArchive(await openCtp(fx.bundles.v1Path));
    const base = { imageDigest: fx.digests.v1, bundleDigest: fx.bundles.v1, repository: `${fx.registry.host}/acme/hello` };
    const runtime = {
      ...facts.runtime,
      network: 'none',
      restart: 'on-failure',
      stop_grace_period: 2.5,
      healthcheck: { type: 'http', port: 8080, path: '/healthz', interval: 0.5, timeout: 5, retries: 3, start_period: 20 },
      resources: { memory: 64 * 1024 * 1024, cpus: 0.25, pids: 100 },
      ulimits: { nofile: { soft: 1024, hard: 4096 } },
    };
    const out = renderK8s({ ...base, facts: { ...facts, runtime } });
    const dep = out.objects.find((d) => d.kind === 'Deployment') as Obj;
    expect(await validateK8s(dep)).toEqual([]);
    const spec = dep.spec.template.spec;
    expect(spec.terminationGracePeriodSeconds).toBe(3);
    const c = spec.containers[0];
    // The host reports the app running once a check passed and gates the deploy on it: readiness, not liveness.
    expect(c.readinessProbe).toEqual({ httpGet: { path: '/healthz', port: 8080 }, periodSeconds: 1, timeoutSeconds: 5, failureThreshold: 3 });
    expect(c.livenessProbe).toBeUndefined();
    expect(c.resources).toEqual({ limits: { memory: String(64 * 1024 * 1024), cpu: '250m' } });
    const said = out.warnings.join('\n');
    expect(said).toMatch(/resources\.pids 100 .*not rendered/);
    expect(said).toMatch(/ulimits .*not rendered/);
    expect(said).toMatch(/restart "on-failure" .*restarts its pods always/);
    expect(said).toMatch(/network "none" .*NetworkPolicy/);
    expect(said).toMatch(/interval 0\.5 s .*1 s/);
    // exec and tcp checks; fractional CPUs round up to the millicore.
    const exec = renderK8s({ ...base, facts: { ...facts, runtime: { ...facts.runtime, healthcheck: { type: 'exec', command: ['/app/check'], interval: 10, timeout: 0.2, retries: 1, start_period: 0 }, resources: { cpus: 1.0005 } } } });
    const ec = (exec.objects.find((d) => d.kind === 'Deployment') as Obj).spec.template.spec.containers[0];
    expect(ec.readinessProbe).toEqual({ exec: { command: ['/app/check'] }, periodSeconds: 10, timeoutSeconds: 1, failureThreshold: 1 });
    expect(ec.resources).toEqual({ limits: { cpu: '1001m' } });
    const tcp = renderK8s({ ...base, facts: { ...facts, runtime: { ...facts.runtime, healthcheck: { type: 'tcp', port: 8080, interval: 10, timeout: 5, retries: 3, start_period: 0 } } } });
    const tc = (tcp.objects.find((d) => d.kind === 'Deployment') as Obj).spec.template.spec.containers[0];
    expect(tc.readinessProbe).toMatchObject({ tcpSocket: { port: 8080 } });
    expect(await validateK8s(exec.objects.find((d) => d.kind === 'Deployment') as Obj)).toEqual([]);
    // No network named: a host's default, none, said too.
    const { network: _n, ...unnamed } = facts.runtime!;
    expect(renderK8s({ ...base, facts: { ...facts, runtime: unnamed } }).warnings).toEqual([expect.stringMatching(/^network "none" \(the default: the manifest names none\) is not rendered/)]);
    // Nothing of it asked: nothing rendered, nothing said.
    const plain = renderK8s({ ...base, facts });
    expect(plain.warnings).toEqual([]);
    const pc = (plain.objects.find((d) => d.kind === 'Deployment') as Obj).spec.template.spec;
    expect([pc.terminationGracePeriodSeconds, pc.containers[0].readinessProbe, pc.containers[0].resources]).toEqual([undefined, undefined, undefined]);
  });

  // SPO's allowedExecutables inherit the profile (ix): px/ux rules are other profiles or none,
  // and `#` glued to a path is part of it (apparmor_parser), not a comment hiding the rest.
  it('AppArmor exec into another profile or unconfined is reported, never made an allowed executable', () => {
    const t = toAbstract('profile x {\n  /bin/sh ix,\n  /usr/bin/tool px,\n  /usr/bin/other ux,\n  /usr/bin/c Cx,\n  /usr/bin/p rpix,\n  /tmp/a#b r, /usr/bin/sh ux,\n}\n');
    expect(t.abstract.executable).toEqual({ allowedExecutables: ['/bin/sh'] });
    expect(t.untranslated).toEqual(expect.arrayContaining(['/usr/bin/tool px,', '/usr/bin/other ux,', '/usr/bin/c Cx,', '/usr/bin/p rpix,']));
    expect(t.untranslated.join('\n')).toMatch(/"#" inside a word/);
  });
});
