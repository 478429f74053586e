import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, rm, symlink, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative } from 'node:path';
import { runtimeDefault } from '../../src/profiles/seccomp/index.js';
import { buildRuntimePlan, loadAppArmor, type EnforceInput } from '../../host/enforce/index.js';
import { collectFacts, type HostFacts } from '../../host/facts.js';
import { RuncRuntime } from '../../host/runtime/index.js';
import { repoRoot } from '../support/cli.js';
import { DIGEST, makeRootfs, requireHostTools } from './support.js';
import { codeOfAsync as codeOf } from '../support/error-code.js';

/** AppArmor enforcement is the one thing this kernel lacks (SPEC §9): its test may skip, saying why. */
function apparmorEnforcing(): { ok: boolean; why: string } {
  let enabled = '';
  try {
    enabled = readFileSync('/sys/module/apparmor/parameters/enabled', 'utf8').trim();
  } catch {
    return { ok: false, why: 'kernel built without AppArmor (/sys/module/apparmor missing)' };
  }
  if (enabled !== 'Y') return { ok: false, why: `AppArmor disabled (/sys/module/apparmor/parameters/enabled = ${enabled})` };
  if (!existsSync('/sys/kernel/security/apparmor')) return { ok: false, why: 'securityfs not mounted' };
  return { ok: true, why: '' };
}
const APPARMOR = apparmorEnforcing();
if (!APPARMOR.ok) console.log(`skipping the AppArmor enforcement test: ${APPARMOR.why}`);

let facts: HostFacts;
let base: string;
let rootfs: string;
let rt: RuncRuntime;
let seq = 0;

function input(over: Partial<EnforceInput> & { command: string[] }): EnforceInput {
  const id = over.id ?? `rt-${process.pid}-${++seq}`;
  return {
    id,
    rootfs,
    app: { name: 'hello', imageDigest: DIGEST },
    runtime: { command: over.command, ...over.runtime },
    grants: over.grants ?? { seccomp: 'required' },
    profiles: over.profiles,
    cgroupsPath: `/cerro-torre/${id}`,
  };
}

async function runToEnd(inp: EnforceInput): Promise<{ exitCode: number | null; output: string }> {
  const plan = await buildRuntimePlan(inp, facts);
  await rt.run(inp.id, plan.config);
  const done = await rt.wait(inp.id, 20000);
  const output = await rt.logs(inp.id);
  await rt.delete(inp.id);
  return { exitCode: done.exitCode, output };
}


beforeAll(async () => {
  requireHostTools();
  facts = await collectFacts();
  ({ base, rootfs } = await makeRootfs());
  rt = await RuncRuntime.open({ stateDir: join(base, 'state'), unifiedCgroupMount: facts.cgroup.unifiedMount });
});

afterAll(async () => {
  for (const c of rt?.store.list() ?? []) await rt.delete(c.id, { force: true }).catch(() => {});
  rt?.close();
  if (base) await rm(base, { recursive: true, force: true });
});

describe('host facts', () => {
  it('reports what this machine kind has (SPEC §9)', () => {
    expect(facts.runc.present).toBe(true);
    expect(facts.runc.version).toMatch(/^\d+\.\d+/);
    expect(facts.seccomp.available).toBe(true);
    expect(facts.ebpf).toMatchObject({ bpftrace: true, tracefs: true, usable: true });
    expect(['v1', 'v2', 'hybrid']).toContain(facts.cgroup.version);
    expect(facts.architecture).toBe(process.arch === 'x64' ? 'amd64' : expect.any(String));
    expect(typeof facts.apparmor.enforcing).toBe('boolean');
    if (!facts.apparmor.enforcing) expect(facts.apparmor.reason).toBeTruthy();
  });
});

describe('OCI runtime config', () => {
  it('confines by default: namespaces, nobody, read-only rootfs, no-new-privileges, RuntimeDefault, runc masks', async () => {
    const plan = await buildRuntimePlan(input({ command: ['/bin/true'] }), facts);
    const c = plan.config;
    expect(c.linux.namespaces.map((n) => n.type).sort()).toEqual(['cgroup', 'ipc', 'mount', 'network', 'pid', 'uts']);
    expect(c.process.user).toEqual({ uid: 65534, gid: 65534 });
    expect(c.root.readonly).toBe(true);
    expect(c.process.noNewPrivileges).toBe(true);
    expect(c.process.capabilities.bounding).toEqual([]);
    expect(plan.seccomp.source).toBe('runtime-default');
    expect(c.linux.seccomp).toEqual(runtimeDefault({ capabilities: [], arch: facts.architecture, kernel: facts.kernel }));
    expect(c.linux.maskedPaths).toContain('/proc/kcore');
    expect(c.linux.readonlyPaths).toContain('/proc/sys');
    expect(c.mounts.find((m) => m.destination === '/sys')?.options).toContain('ro');
    expect(c.linux.resources?.pids?.limit).toBe(1024);
    // Only where the kernel enforces AppArmor does the config name a profile.
    expect(c.process.apparmorProfile === undefined).toBe(!facts.apparmor.enforcing);
    expect(plan.apparmor.name).toBe('cerro-torre-hello-abababababab');
  });

  it('grants capabilities = manifest ask ∩ policy allow, in all five sets, and the limits', async () => {
    const plan = await buildRuntimePlan(
      {
        ...input({ command: ['/bin/true'], runtime: { capabilities: ['CAP_NET_BIND_SERVICE', 'CAP_SYS_ADMIN'] } }),
        grants: { capabilitiesAllowed: ['CAP_NET_BIND_SERVICE', 'CAP_CHOWN'], limits: { memoryBytes: 64 << 20, pids: 32, cpus: 0.5 } },
      },
      facts,
    );
    for (const set of Object.values(plan.config.process.capabilities)) expect(set).toEqual(['CAP_NET_BIND_SERVICE']);
    expect(plan.config.linux.resources).toMatchObject({ memory: { limit: 64 << 20 }, pids: { limit: 32 }, cpu: { quota: 50000, period: 100000 } });
  });

  it('refuses root and the host network unless the policy allows them', async () => {
    expect(await codeOf(buildRuntimePlan(input({ command: ['/bin/true'], runtime: { user: '0' } }), facts))).toBe('POLICY_VIOLATION');
    const root = await buildRuntimePlan({ ...input({ command: ['/bin/true'], runtime: { user: '0:0' } }), grants: { allowRoot: true } }, facts);
    expect(root.config.process.user).toEqual({ uid: 0, gid: 0 });
    expect(await codeOf(buildRuntimePlan(input({ command: ['/bin/true'], runtime: { network: 'host' } }), facts))).toBe('POLICY_VIOLATION');
    const host = await buildRuntimePlan({ ...input({ command: ['/bin/true'], runtime: { network: 'host' } }), grants: { allowHostNetwork: true } }, facts);
    expect(host.config.linux.namespaces.map((n) => n.type)).not.toContain('network');
  });

  it('refuses with HOST_CANNOT_ENFORCE when the policy requires AppArmor and the host has none', async () => {
    const without: HostFacts = { ...facts, apparmor: { present: false, enforcing: false, parser: true, reason: 'kernel has no AppArmor' } };
    const inp = { ...input({ command: ['/bin/true'] }), grants: { apparmor: 'required' as const } };
    expect(await codeOf(buildRuntimePlan(inp, without))).toBe('HOST_CANNOT_ENFORCE');
    // and on this very host, as its facts say
    if (!facts.apparmor.enforcing) expect(await codeOf(buildRuntimePlan(inp, facts))).toBe('HOST_CANNOT_ENFORCE');
    else console.log('this host enforces AppArmor: the refusal is shown with synthetic facts only');
    const noBpf: HostFacts = { ...facts, ebpf: { ...facts.ebpf, bpftrace: false, usable: false } };
    expect(await codeOf(buildRuntimePlan({ ...inp, grants: { monitoring: 'required' } }, noBpf))).toBe('HOST_CANNOT_ENFORCE');
  });

  it('refuses a bundle profile that does not confine when the policy requires seccomp', async () => {
    const open = { ...runtimeDefault(), defaultAction: 'SCMP_ACT_ALLOW' };
    expect(await codeOf(buildRuntimePlan(input({ command: ['/bin/true'], profiles: { seccomp: open } }), facts))).toBe('POLICY_VIOLATION');
    const notOci = { ...runtimeDefault(), archMap: [] };
    expect(await codeOf(buildRuntimePlan(input({ command: ['/bin/true'], profiles: { seccomp: notOci } }), facts))).toBe('PROFILE_INVALID');
  });

  it('refuses a bundle profile that does not confine when no policy requires seccomp (ct run without --policies)', async () => {
    // The grants `ct run` without --policies gives, and an agent policy with no runtime.seccomp:
    // seccomp optional. The bundle's profile still replaces RuntimeDefault, so it must narrow it.
    const optional = (profile: unknown) => ({ ...input({ command: ['/bin/true'], profiles: { seccomp: profile } }), grants: {} });
    const allowAll = { defaultAction: 'SCMP_ACT_ALLOW' };
    const err = await buildRuntimePlan(optional(allowAll), facts).then(() => undefined, (e: unknown) => e as { code: string; details: Record<string, unknown> });
    expect(err?.code).toBe('POLICY_VIOLATION');
    expect(err?.details.problems).toEqual(['DEFAULT_ACTION_ALLOWS']);
    // logging is not denying; nor is an ERRNO default that lets through what RuntimeDefault denies
    expect(await codeOf(buildRuntimePlan(optional({ ...runtimeDefault({ capabilities: [] }), defaultAction: 'SCMP_ACT_LOG' }), facts))).toBe('POLICY_VIOLATION');
    const rd = runtimeDefault({ capabilities: [] });
    const withUnshare = { ...rd, syscalls: [...rd.syscalls!, { names: ['unshare', 'setns', 'mount'], action: 'SCMP_ACT_ALLOW' }] };
    const outside = await buildRuntimePlan(optional(withUnshare), facts).then(() => undefined, (e: unknown) => e as { code: string; details: Record<string, unknown> });
    expect(outside?.code).toBe('POLICY_VIOLATION');
    expect(outside?.details).toMatchObject({ problems: ['OUTSIDE_RUNTIME_DEFAULT'], outside: ['mount', 'setns', 'unshare'] });
    // A policy's extras count only where that policy requires seccomp.
    expect(await codeOf(buildRuntimePlan({ ...optional(withUnshare), grants: { seccompExtras: ['unshare', 'setns', 'mount'] } }, facts))).toBe('POLICY_VIOLATION');
    const required = await buildRuntimePlan({ ...optional(withUnshare), grants: { seccomp: 'required', seccompExtras: ['unshare', 'setns', 'mount'] } }, facts);
    expect(required.seccomp.source).toBe('bundle');
    // A narrowing profile is the bundle's to use.
    const noMkdir = { ...rd, syscalls: rd.syscalls!.map((s) => ({ ...s, names: s.names.filter((n) => n !== 'mkdir' && n !== 'mkdirat') })) };
    const plan = await buildRuntimePlan(optional(noMkdir), facts);
    expect(plan.seccomp.source).toBe('bundle');
    expect(plan.config.linux.seccomp).toEqual(noMkdir);
  });

  it("does not follow a rootfs /etc/passwd link to the host's files", async () => {
    const { base: b2, rootfs: r2 } = await makeRootfs();
    try {
      await symlink('/etc/passwd', join(r2, 'etc', 'passwd'));
      expect(await codeOf(buildRuntimePlan({ ...input({ command: ['/bin/true'], runtime: { user: 'root' } }), rootfs: r2 }, facts))).toBe('MANIFEST_INVALID');
      await rm(join(r2, 'etc', 'passwd'));
      await writeFile(join(r2, 'etc', 'passwd'), 'app:x:1000:1001::/:/bin/sh\n');
      const plan = await buildRuntimePlan({ ...input({ command: ['/bin/true'], runtime: { user: 'app' } }), rootfs: r2 }, facts);
      expect(plan.config.process.user).toEqual({ uid: 1000, gid: 1001 });
    } finally {
      await rm(b2, { recursive: true, force: true });
    }
  });
});

describe('runc runtime', () => {
  it('runs an approved container under RuntimeDefault, as nobody, with no-new-privileges', async () => {
    const r = await runToEnd(input({ command: ['/bin/sh', '-c', 'id -u; grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status; echo hi > /x || echo ro'] }));
    expect(r.exitCode).toBe(0);
    expect(r.output).toContain('65534\n');
    expect(r.output).toMatch(/NoNewPrivs:\s+1/);
    expect(r.output).toMatch(/Seccomp:\s+2/); // 2 = filter mode
    expect(r.output).toContain('ro\n'); // read-only rootfs
  });

  it('a syscall the profile denies fails with EPERM inside the container', async () => {
    // RuntimeDefault for the capabilities this container gets (none): the Docker-default one would
    // also allow chroot (CAP_SYS_CHROOT), which the policy check rightly calls outside.
    const rd = runtimeDefault({ capabilities: [] });
    const noMkdir = { ...rd, syscalls: rd.syscalls!.map((s) => ({ ...s, names: s.names.filter((n) => n !== 'mkdir' && n !== 'mkdirat') })) };
    const r = await runToEnd(input({ command: ['/bin/sh', '-c', 'mkdir /tmp/d; echo "rc=$?"; echo ok > /tmp/f && cat /tmp/f'], profiles: { seccomp: noMkdir } }));
    expect(r.output).toContain('Operation not permitted');
    expect(r.output).toContain('rc=1');
    expect(r.output).toContain('ok\n'); // the rest still works
    // the same command under RuntimeDefault can mkdir
    expect((await runToEnd(input({ command: ['/bin/sh', '-c', 'mkdir /tmp/d && echo made'] }))).output).toContain('made');
  });

  it('runs a narrowing bundle profile without a policy: what it denies, and what RuntimeDefault denies, is EPERM', async () => {
    const rd = runtimeDefault({ capabilities: [] });
    const noMkdir = { ...rd, syscalls: rd.syscalls!.map((s) => ({ ...s, names: s.names.filter((n) => n !== 'mkdir' && n !== 'mkdirat') })) };
    const r = await runToEnd({
      ...input({ command: ['/bin/sh', '-c', 'mkdir /tmp/d; echo "mkdir=$?"; unshare -Ur id -u; echo "unshare=$?"'], profiles: { seccomp: noMkdir } }),
      grants: {},
    });
    expect(r.output).toContain('mkdir=1');
    // no user namespace (and so no capabilities in one) for a nobody app without CAP_SYS_ADMIN
    expect(r.output).toMatch(/unshare=[1-9]/);
    expect(r.output).not.toMatch(/^0$/m);
  });

  it('refuses to start under a profile that denies runc start-up syscalls with RUNTIME_FAILED (when forced past the check)', async () => {
    const inp = input({ command: ['/bin/true'] });
    const plan = await buildRuntimePlan(inp, facts);
    // Bypass checkBundleSeccomp on purpose: this is what the check protects against.
    plan.config.linux.seccomp = { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['exit_group'], action: 'SCMP_ACT_ALLOW' }] };
    await rt.create(inp.id, plan.config);
    expect(await codeOf(rt.start(inp.id))).toBe('RUNTIME_FAILED');
    await rt.delete(inp.id, { force: true });
  });

  it('runs rootless: root in a user namespace is an unprivileged id on the host', async () => {
    const inp = { ...input({ command: ['/bin/sh', '-c', 'id -u; cat /proc/self/uid_map'], runtime: { user: '0' } }), grants: { allowRoot: true }, userns: { hostUid: 100000, hostGid: 100000, size: 65536 } };
    // The mapped ids must be able to reach the rootfs: mkdtemp made its parent 0700.
    await chmod(base, 0o755);
    const plan = await buildRuntimePlan(inp, facts);
    expect(plan.config.linux.namespaces.map((n) => n.type)).toContain('user');
    const r = await runToEnd(inp);
    expect(r.exitCode).toBe(0);
    expect(r.output).toMatch(/^0\n\s*0\s+100000\s+65536\n$/);
  });

  it('records created → running → stopped → removed with the exit code', async () => {
    const inp = input({ command: ['/bin/sh', '-c', 'exit 5'] });
    const r = await runToEnd(inp);
    expect(r.exitCode).toBe(5);
    const changes = rt.store.changes().filter((c) => c.id === inp.id).map((c) => [c.status, c.exitCode]);
    expect(changes).toEqual([['created', null], ['running', null], ['stopped', 5], ['removed', 5]]);
  });

  it('runs a container whose state directory was given relative to the working directory', async () => {
    // The supervisor runs from the bundle directory: a relative path handed to it named nothing.
    const rel = relative(process.cwd(), join(base, 'rel-state'));
    expect(isAbsolute(rel)).toBe(false);
    const relRt = await RuncRuntime.open({ stateDir: rel, unifiedCgroupMount: facts.cgroup.unifiedMount });
    try {
      expect(relRt.stateDir).toBe(join(base, 'rel-state'));
      const inp = input({ command: ['/bin/sh', '-c', 'echo rel; exit 3'] });
      const plan = await buildRuntimePlan(inp, facts);
      await relRt.run(inp.id, plan.config);
      expect((await relRt.wait(inp.id, 20000)).exitCode).toBe(3);
      expect(await relRt.logs(inp.id)).toBe('rel\n');
      await relRt.delete(inp.id);
    } finally {
      relRt.close();
    }
  });

  it('restarts a stopped container from the same bundle', async () => {
    const inp = input({ command: ['/bin/sh', '-c', 'echo run; exit 4'] });
    const plan = await buildRuntimePlan(inp, facts);
    await rt.run(inp.id, plan.config);
    expect((await rt.wait(inp.id)).exitCode).toBe(4);
    await rt.restart(inp.id);
    expect((await rt.wait(inp.id)).exitCode).toBe(4);
    expect(await rt.logs(inp.id)).toBe('run\nrun\n');
    const changes = rt.store.changes().filter((c) => c.id === inp.id).map((c) => c.status);
    expect(changes).toEqual(['created', 'running', 'stopped', 'created', 'running', 'stopped']);
    await rt.delete(inp.id);
  });

  it('pauses and resumes a running container (cgroup freezer)', async () => {
    const inp = input({ command: ['/bin/sh', '-c', 'while true; do sleep 1; done'] });
    const plan = await buildRuntimePlan(inp, facts);
    await rt.run(inp.id, plan.config);
    expect((await rt.pause(inp.id)).status).toBe('paused');
    expect((await rt.state(inp.id)).status).toBe('paused');
    expect((await rt.resume(inp.id)).status).toBe('running');
    // sh as pid 1 has no TERM handler, and the kernel drops unhandled signals to a pid-1: KILL after the grace
    expect((await rt.stop(inp.id, 300)).exitCode).toBe(137);
    await rt.delete(inp.id);
    expect(rt.store.changes().filter((c) => c.id === inp.id).map((c) => c.status)).toEqual(['created', 'running', 'paused', 'running', 'stopped', 'removed']);
  });

  it('stops a running container (TERM, then KILL)', async () => {
    const inp = input({ command: ['/bin/sh', '-c', 'trap "" TERM; while true; do sleep 1; done'] });
    const plan = await buildRuntimePlan(inp, facts);
    const started = await rt.run(inp.id, plan.config);
    expect(started.status).toBe('running');
    expect(started.pid).toBeGreaterThan(1);
    const stopped = await rt.stop(inp.id, 300);
    expect(stopped.status).toBe('stopped');
    expect(stopped.exitCode).toBe(137); // 128 + SIGKILL, as runc reports it
    await rt.delete(inp.id);
  });
});

describe('AppArmor enforcement', () => {
  (APPARMOR.ok ? it : it.skip)('loads the generated profile and runs the container confined by it', async () => {
    const inp = input({ command: ['/bin/sh', '-c', 'cat /proc/self/attr/current'] });
    const plan = await buildRuntimePlan(inp, facts);
    expect(plan.apparmor.applied).toBe(true);
    expect(plan.config.process.apparmorProfile).toBe(plan.apparmor.name);
    await loadAppArmor(plan.apparmor);
    await rt.run(inp.id, plan.config);
    await rt.wait(inp.id);
    expect(await rt.logs(inp.id)).toContain(`${plan.apparmor.name} (enforce)`);
    await rt.delete(inp.id);
  });
});

describe('kill -9 of the controlling process', () => {
  async function startUnderAgent(id: string, command: string[]): Promise<{ agent: ReturnType<typeof spawn>; info: { status: string; pid: number; supervisorPid: number } }> {
    const plan = await buildRuntimePlan(input({ id, command }), facts);
    const cfg = join(base, `${id}.json`);
    await writeFile(cfg, JSON.stringify(plan.config));
    const agent = spawn(process.execPath, [join(repoRoot, 'test', 'host', 'fixtures', 'agent.mjs'), join(base, 'state'), facts.cgroup.unifiedMount ?? '', id, cfg], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: agent.stdout! }).once('line', resolve);
      agent.once('exit', (code) => reject(new Error(`agent exited ${code}`)));
    });
    return { agent, info: JSON.parse(line) };
  }

  function killed(child: ReturnType<typeof spawn>): Promise<void> {
    return new Promise((r) => {
      child.once('exit', () => r());
      child.kill('SIGKILL');
    });
  }

  it('leaves the container running; a new runtime recovers it and its exit code from the supervisor', async () => {
    const id = `k9-${process.pid}`;
    const { agent, info } = await startUnderAgent(id, ['/bin/sh', '-c', 'sleep 1; exit 7']);
    expect(info.status).toBe('running');
    await killed(agent);
    // still running, seen by a fresh runtime on the same state dir
    const fresh = await RuncRuntime.open({ stateDir: join(base, 'state'), unifiedCgroupMount: facts.cgroup.unifiedMount });
    try {
      const now = await fresh.state(id);
      expect(now.status).toBe('running');
      expect(now.pid).toBe(info.pid);
      const done = await fresh.wait(id, 10000);
      expect(done).toMatchObject({ status: 'stopped', exitCode: 7, exitKnown: true });
      const rec = await fresh.recover();
      expect(rec.containers.find((c) => c.id === id)?.exitCode).toBe(7);
      await fresh.delete(id);
    } finally {
      fresh.close();
    }
  });

  it('reports exited with the code unknown when the supervisor died too', async () => {
    const id = `k9b-${process.pid}`;
    const { agent, info } = await startUnderAgent(id, ['/bin/sh', '-c', 'sleep 1; exit 9']);
    await killed(agent);
    process.kill(info.supervisorPid, 'SIGKILL');
    const fresh = await RuncRuntime.open({ stateDir: join(base, 'state'), unifiedCgroupMount: facts.cgroup.unifiedMount });
    try {
      expect((await fresh.state(id)).status).toBe('running');
      const done = await fresh.wait(id, 10000);
      expect(done).toMatchObject({ status: 'stopped', exitCode: null, exitKnown: false });
      await fresh.delete(id, { force: true });
    } finally {
      fresh.close();
    }
  });
});
