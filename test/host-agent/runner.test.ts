/**
 * Issue 7 acceptance at the host: `LocalRunner.run` (what the agent calls with each assignment and
 * the downloaded .ctp) runs an approved bundle under runc, and refuses, before runc sees anything,
 * an unsigned bundle, a tampered one, one with a file no attestation covers, bytes that are not
 * the assigned bundle, one lacking an attestation its policy requires, and a bundle whose policy
 * requires AppArmor on a host that cannot enforce it.
 * What runs is asked of runc itself (`runc list` / `runc state`), never only of the agent's records.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { appendFileSync, closeSync, copyFileSync, cpSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, statSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { apparmorFacts, collectFacts, type HostFacts } from '../../host/facts.js';
import { RuncRuntime } from '../../host/runtime/runc.js';
import { LocalRunner } from '../../host/agent/runner.js';
import { OpenedBundles } from '../../host/agent/opened-bundles.js';
import { PolicyStore } from '../../src/policy/store.js';
import { PolicyRefresh } from '../../host/agent/policy-refresh.js';
import { openCtp } from '../../src/bundle/read.js';
import { BLOB_PREFIX, CtpArchive } from '../../src/bundle/archive.js';
import { checkOciLayout } from '../../src/bundle/check-layout.js';
import { VerificationCache } from '../../src/verify/cache.js';
import { agentFixture, assignmentFor, deleteAllAndClose, pidAlive, runcDeleteAll, runcList, runcState, type AgentFixture, type BundleFile } from './fixture.js';
import { containerIdFor } from '../../src/protocol/container-id.js';

const hostAppArmor = await apparmorFacts();
if (!hostAppArmor.enforcing) console.warn(`skipping the AppArmor enforcement test: ${hostAppArmor.reason ?? 'AppArmor is not enforcing on this host'}`);
const itIfAppArmor = hostAppArmor.enforcing ? it : it.skip;

describe('LocalRunner: what reaches runc', () => {
  let fx: AgentFixture;
  let facts: HostFacts;
  let runtime: RuncRuntime;
  let stateDir: string;
  let generation = 0;

  const runnerWith = (f: HostFacts) => {
    const policies = new PolicyStore([fx.policiesDir]);
    return policies.reload().then((r) => {
      if (!r.ok) throw new Error(`policies failed to load: ${r.error?.code}`);
      return new LocalRunner({ stateDir, trust: () => fx.trust, policies, facts: async () => f, runtime });
    });
  };

  /** Runs `bundle` as `app` and checks that nothing of it reached runc or the container store on disk. */
  const expectRefusedBeforeRunc = async (runner: LocalRunner, bundle: BundleFile, app: string, o: { environment?: string; bundleDigest?: string } = {}) => {
    const before = runcList(stateDir).map((c) => `${c.id}:${c.pid}:${c.status}`).sort();
    const a = assignmentFor(bundle, { app, generation: ++generation, ...o });
    const out = await runner.run(a, bundle.path);
    const id = runner.containerId(a);
    expect(out.state).toBe('refused');
    expect(runcState(stateDir, id)).toBeUndefined();
    expect(runcList(stateDir).map((c) => `${c.id}:${c.pid}:${c.status}`).sort()).toEqual(before);
    expect(existsSync(join(stateDir, 'containers', id))).toBe(false);
    // Nothing unpacked either (the runner unpacks into rootfs/<id>-<generation> only once allowed).
    const rootfs = join(stateDir, 'rootfs');
    expect(existsSync(rootfs) ? readdirSync(rootfs).filter((n) => n.startsWith(`${id}-`)) : []).toEqual([]);
    return out;
  };

  beforeAll(async () => {
    fx = await agentFixture();
    facts = await collectFacts();
    stateDir = join(fx.dir, 'host');
    runtime = await RuncRuntime.open({ stateDir, unifiedCgroupMount: facts.cgroup.unifiedMount });
  }, 60_000);

  afterAll(async () => {
    if (runtime) await deleteAllAndClose(runtime);
    if (stateDir) runcDeleteAll(stateDir);
    await fx?.cleanup();
  });

  it('runs an approved bundle: runc reports it running, and a repeated assignment does not restart it', async () => {
    const runner = await runnerWith(facts);
    const a = assignmentFor(fx.bundles.signed, { app: 'agent-run', generation: ++generation });
    const out = await runner.run(a, fx.bundles.signed.path);
    expect(out).toMatchObject({ state: 'running' });
    const id = runner.containerId(a);
    const st = runcState(stateDir, id);
    expect(st?.status).toBe('running');
    expect(pidAlive(st!.pid)).toBe(true);
    expect(runcList(stateDir).find((c) => c.id === id)?.status).toBe('running');
    // As the kernel sees the app: confined by a seccomp filter (the policy requires RuntimeDefault),
    // no new privileges, not root on the host, no capabilities (the manifest asks for none).
    const status = readFileSync(`/proc/${st!.pid}/status`, 'utf8');
    const field = (k: string) => new RegExp(`^${k}:\\s*(.*)$`, 'm').exec(status)?.[1].trim();
    expect(field('Seccomp')).toBe('2');
    expect(field('NoNewPrivs')).toBe('1');
    expect(field('Uid')?.split(/\s+/)).not.toContain('0');
    expect(field('CapEff')).toBe('0000000000000000');
    // The server retries after a crash: the same image again is answered `running`, same process.
    const again = await runner.run({ ...a, generation: ++generation }, fx.bundles.signed.path);
    expect(again.state).toBe('running');
    expect(runcState(stateDir, id)?.pid).toBe(st!.pid);
    // What the agent reports to the server (its inventory) agrees with runc.
    expect(await runner.inventory()).toContainEqual(expect.objectContaining({ id, app: 'agent-run', imageDigest: fx.bundles.signed.imageDigest, state: 'running' }));
  }, 30_000);

  it('does not hash a bundle file it already read again, but hashes it anew once the file changed, even in place with its times put back (#14)', async () => {
    const policies = new PolicyStore([fx.policiesDir]);
    expect((await policies.reload()).ok).toBe(true);
    const opened = new OpenedBundles();
    const runner = new LocalRunner({ stateDir, trust: () => fx.trust, policies, facts: async () => facts, runtime, openedBundles: opened });
    const copy = join(fx.dir, 'opened-copy.ctp');
    copyFileSync(fx.bundles.signed.path, copy);
    const a = assignmentFor(fx.bundles.signed, { app: 'agent-run', generation: ++generation });
    const id = runner.containerId(a);
    const before = runcState(stateDir, id);
    expect(before?.status).toBe('running');
    expect(await runner.run(a, copy)).toMatchObject({ state: 'running' });
    expect({ hits: opened.hits, size: opened.size }).toEqual({ hits: 0, size: 1 });
    expect(await runner.run({ ...a, generation: ++generation }, copy)).toMatchObject({ state: 'running' });
    expect(opened.hits).toBe(1);
    // One byte of a file in it changed in place, same size, its modification time put back: refused.
    const at = (await openCtp(copy)).entries.get('manifest.toml')!.dataOffset;
    const st = statSync(copy);
    const fd = openSync(copy, 'r+');
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, at);
    writeSync(fd, Buffer.from([b[0] === 0x20 ? 0x09 : 0x20]), 0, 1, at);
    closeSync(fd);
    utimesSync(copy, st.atime, st.mtime);
    expect(await runner.run({ ...a, generation: ++generation }, copy)).toMatchObject({ state: 'refused', code: 'DIGEST_MISMATCH' });
    expect(opened.hits).toBe(1);
    expect(runcState(stateDir, id)).toEqual(before);
  });

  it('refuses a layer whose bytes no longer match its digest when unpacked (DIGEST_MISMATCH): nothing unpacked or started, the running container untouched (#14)', async () => {
    // The layer's bytes change after the bundle was opened and hashed (the unpack thread hashes
    // them again as it extracts): here the gzip header's time field, which inflates the same, so
    // only the digest can tell.
    class Corrupting extends OpenedBundles {
      override async open(path: string, digest: string): Promise<CtpArchive> {
        const a = await super.open(path, digest);
        const name = `${BLOB_PREFIX}${checkOciLayout(a, { imageDigest: 'later' }).layers[0].digest.slice(7)}`;
        const e = a.entries.get(name)!;
        expect(e.data).toBeDefined();
        const bytes = Buffer.from(e.data!);
        bytes[4] ^= 0xff;
        const entries = new Map(a.entries).set(name, { ...e, data: bytes });
        return new CtpArchive(a.source, a.bundleDigest, a.size, a.compressed, entries, a.directories, undefined, a.mtime);
      }
    }
    const policies = new PolicyStore([fx.policiesDir]);
    expect((await policies.reload()).ok).toBe(true);
    const runner = new LocalRunner({ stateDir, trust: () => fx.trust, policies, facts: async () => facts, runtime, openedBundles: new Corrupting() });
    const id = containerIdFor('production', 'agent-run');
    const before = runcState(stateDir, id);
    expect(before?.status).toBe('running');
    const gen = ++generation;
    const out = await runner.run(assignmentFor(fx.bundles.armored, { app: 'agent-run', generation: gen }), fx.bundles.armored.path);
    expect(out).toMatchObject({ state: 'refused', code: 'DIGEST_MISMATCH' });
    expect(runcState(stateDir, id)).toEqual(before);
    expect(readdirSync(join(stateDir, 'rootfs')).filter((n) => n.includes(`${id}-${gen}`))).toEqual([]);
  });

  it('refuses a tampered bundle of the image already running (same image digest) instead of answering running', async () => {
    // The tampered twin keeps the image and raises a capability in its manifest: "the same image is
    // already running" must not stand in for verifying what was assigned.
    const runner = await runnerWith(facts);
    const id = containerIdFor('production', 'agent-run');
    const before = runcState(stateDir, id);
    expect(before?.status).toBe('running');
    expect(fx.bundles.tampered.imageDigest).toBe(fx.bundles.signed.imageDigest);
    const out = await runner.run(assignmentFor(fx.bundles.tampered, { app: 'agent-run', generation: ++generation }), fx.bundles.tampered.path);
    expect(out).toMatchObject({ state: 'refused', code: 'DIGEST_MISMATCH' });
    expect(runcState(stateDir, id)).toEqual(before);
  });

  it('replaces the running container when another approved bundle of the same image is assigned (new security files apply)', async () => {
    // `armored` is the same image as `signed` plus security/apparmor: what runs must be the bundle
    // assigned, so "the same image already runs" is not enough to answer `running`.
    expect(fx.bundles.armored.imageDigest).toBe(fx.bundles.signed.imageDigest);
    const runner = await runnerWith(facts);
    const id = containerIdFor('production', 'agent-run');
    const before = runcState(stateDir, id)!;
    expect(before.status).toBe('running');
    // What an unpack interrupted by a crash left (never renamed into place, so never used) goes too.
    const stale = join(stateDir, 'rootfs', `.${id}-999.0123456789ab.tmp`);
    mkdirSync(join(stale, 'bin'), { recursive: true });
    const a = assignmentFor(fx.bundles.armored, { app: 'agent-run', generation: ++generation });
    expect(await runner.run(a, fx.bundles.armored.path)).toMatchObject({ state: 'running' });
    expect(existsSync(stale)).toBe(false);
    const after = runcState(stateDir, id)!;
    expect(after.status).toBe('running');
    expect(after.pid).not.toBe(before.pid);
    expect(pidAlive(before.pid)).toBe(false);
    // The replaced container's root filesystem does not stay behind.
    expect(readdirSync(join(stateDir, 'rootfs')).filter((n) => new RegExp(`^${containerIdFor('production', 'agent-run')}-\\d+$`).test(n))).toHaveLength(1);
    // …and the same assignment again (a server retrying) leaves it alone.
    expect(await runner.run({ ...a, generation: ++generation }, fx.bundles.armored.path)).toMatchObject({ state: 'running' });
    expect(runcState(stateDir, id)).toEqual(after);
  }, 30_000);

  it('refuses an assignment for another environment than the one this host serves (ENVIRONMENT_MISMATCH)', async () => {
    const policies = new PolicyStore([fx.policiesDir]);
    expect((await policies.reload()).ok).toBe(true);
    const prodHost = new LocalRunner({ stateDir, trust: () => fx.trust, policies, facts: async () => facts, runtime, environment: 'production' });
    const out = await expectRefusedBeforeRunc(prodHost, fx.bundles.signed, 'agent-env', { environment: 'edge' });
    expect(out.code).toBe('ENVIRONMENT_MISMATCH');
  });

  it('refuses an unsigned bundle before runc (MISSING_ATTESTATION: nothing authenticates its manifest.toml)', async () => {
    // docs/verification.md: a .ctp with no attestation at all is rejected in every mode (SPEC §2
    // "everything in the bundle is signed"; SPEC §4 "no bundle → MISSING_ATTESTATION").
    const out = await expectRefusedBeforeRunc(await runnerWith(facts), fx.bundles.unsigned, 'agent-unsigned');
    expect(out.code).toBe('MISSING_ATTESTATION');
  });

  it('refuses a signed bundle lacking an attestation its policy requires (MISSING_ATTESTATION) before runc', async () => {
    const out = await expectRefusedBeforeRunc(await runnerWith(facts), fx.bundles.partial, 'agent-partial');
    expect(out.code).toBe('MISSING_ATTESTATION');
  });

  it('does not verify again what it verified under the same trust store and policies; another trust store or policy set verifies anew (#14)', async () => {
    const policies = new PolicyStore([fx.policiesDir]);
    expect((await policies.reload()).ok).toBe(true);
    const cache = new VerificationCache();
    const runner = new LocalRunner({ stateDir, trust: () => fx.trust, policies, facts: async () => facts, runtime, verificationCache: cache });
    // `partial` verifies and is then refused by policy: verification runs, runc is never reached.
    const first = await expectRefusedBeforeRunc(runner, fx.bundles.partial, 'agent-cache');
    expect({ code: first.code, hits: cache.hits, misses: cache.misses, size: cache.size }).toEqual({ code: 'MISSING_ATTESTATION', hits: 0, misses: 1, size: 1 });
    const again = await expectRefusedBeforeRunc(runner, fx.bundles.partial, 'agent-cache');
    expect({ code: again.code, hits: cache.hits, misses: cache.misses }).toEqual({ code: 'MISSING_ATTESTATION', hits: 1, misses: 1 });
    // A rejected bundle's report is cached too and still refused with its own code.
    for (let i = 0; i < 2; i++) expect((await expectRefusedBeforeRunc(runner, fx.bundles.unsigned, 'agent-cache-u')).code).toBe('MISSING_ATTESTATION');
    expect({ hits: cache.hits, misses: cache.misses }).toEqual({ hits: 2, misses: 2 });
    // Another trust store (its digest differs) is another key: verified again.
    const otherTrust = { ...fx.trust, store: { ...fx.trust.store, id: 'another-store' }, storeDigest: `${fx.trust.storeDigest}-other` };
    const other = new LocalRunner({ stateDir, trust: () => otherTrust, policies, facts: async () => facts, runtime, verificationCache: cache });
    expect((await expectRefusedBeforeRunc(other, fx.bundles.partial, 'agent-cache')).code).toBe('MISSING_ATTESTATION');
    expect({ hits: cache.hits, misses: cache.misses }).toEqual({ hits: 2, misses: 3 });
    // Another policy set (its digest changes when its files do) too.
    const altDir = join(fx.dir, 'policies-alt');
    cpSync(fx.policiesDir, altDir, { recursive: true });
    const extra = readdirSync(altDir).find((n) => n.endsWith('.policy.yaml'))!;
    appendFileSync(join(altDir, extra), '\n# changed\n');
    const altPolicies = new PolicyStore([altDir]);
    expect((await altPolicies.reload()).ok).toBe(true);
    expect(altPolicies.current?.digest).not.toBe(policies.current?.digest);
    const alt = new LocalRunner({ stateDir, trust: () => fx.trust, policies: altPolicies, facts: async () => facts, runtime, verificationCache: cache });
    expect((await expectRefusedBeforeRunc(alt, fx.bundles.partial, 'agent-cache')).code).toBe('MISSING_ATTESTATION');
    expect({ hits: cache.hits, misses: cache.misses }).toEqual({ hits: 2, misses: 4 });
  });

  it('judges each assignment by the policies as they are now: a policy edited after a refusal allows the next assignment, no restart (ct host run)', async () => {
    const dir = join(fx.dir, 'policies-edited');
    cpSync(fx.policiesDir, dir, { recursive: true });
    const policies = new PolicyStore([dir]);
    const lines: string[] = [];
    const refresh = new PolicyRefresh(policies, { source: dir, log: (l) => lines.push(l), recheckMs: 0 });
    expect((await refresh.reload()).ok).toBe(true);
    const runner = new LocalRunner({ stateDir, trust: () => fx.trust, policies, refreshPolicies: () => refresh.beforeJudge(), facts: async () => facts, runtime });
    // The production policy requires an SPDX document, which this bundle lacks.
    expect((await expectRefusedBeforeRunc(runner, fx.bundles.partial, 'agent-reload')).code).toBe('MISSING_ATTESTATION');
    // The operator drops that requirement from the host's policy file; the agent is not restarted.
    const file = join(dir, 'production.policy.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('  - predicateType: https://spdx.dev/Document\n', ''));
    const a = assignmentFor(fx.bundles.partial, { app: 'agent-reload', generation: ++generation });
    expect(await runner.run(a, fx.bundles.partial.path)).toMatchObject({ state: 'running' });
    expect(runcState(stateDir, runner.containerId(a))?.status).toBe('running');
    expect(lines).toEqual([`policies from ${dir} reloaded: ${policies.current?.digest}`]);
    // A broken edit leaves the last good set in force, and is said once.
    const good = policies.current?.digest;
    writeFileSync(file, 'kind: [');
    await refresh.beforeJudge();
    await refresh.beforeJudge();
    expect(policies.current?.digest).toBe(good);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toContain(`the last good set (${good}) stays in force`);
  });

  it('refuses a bundle whose manifest was changed after signing (DIGEST_MISMATCH) before runc', async () => {
    const out = await expectRefusedBeforeRunc(await runnerWith(facts), fx.bundles.tampered, 'agent-tampered');
    expect(out.code).toBe('DIGEST_MISMATCH');
  });

  it('refuses a bundle holding a security file no attestation covers (UNCOVERED_FILE) before runc', async () => {
    const out = await expectRefusedBeforeRunc(await runnerWith(facts), fx.bundles.uncovered, 'agent-uncovered');
    expect(out.code).toBe('UNCOVERED_FILE');
  });

  it('refuses bytes that are not the assigned bundle (DIGEST_MISMATCH), even a validly signed one', async () => {
    // The server named the signed bundle; the bytes on disk are another (signed, approved) bundle.
    const out = await expectRefusedBeforeRunc(await runnerWith(facts), fx.bundles.armored, 'agent-swapped', { bundleDigest: fx.bundles.signed.bundleDigest });
    expect(out.code).toBe('DIGEST_MISMATCH');
  });

  it('refuses, on a host that cannot enforce AppArmor, a bundle whose policy requires it (HOST_APPARMOR_NOT_ENFORCING)', async () => {
    // On a kernel with AppArmor (not this machine: SPEC §9) the same question is asked of a host
    // that reports it lacks AppArmor, so this refusal is checked everywhere.
    const without: HostFacts = facts.apparmor.enforcing
      ? { ...facts, apparmor: { present: false, enforcing: false, parser: facts.apparmor.parser, reason: 'kernel has no AppArmor' } }
      : facts;
    const runner = await runnerWith(without);
    const out = await expectRefusedBeforeRunc(runner, fx.bundles.armored, 'agent-armored', { environment: 'hardened' });
    expect(out.code).toBe('HOST_APPARMOR_NOT_ENFORCING');
    // The same bundle in an environment whose policy does not require AppArmor runs on this host:
    // the refusal above is the AppArmor requirement, not the bundle.
    const ok = await runner.run(assignmentFor(fx.bundles.armored, { app: 'agent-armored', generation: ++generation }), fx.bundles.armored.path);
    expect(ok.state).toBe('running');
    expect(runcState(stateDir, containerIdFor('production', 'agent-armored'))?.status).toBe('running');
    await runtime.delete(containerIdFor('production', 'agent-armored'), { force: true, purge: true });
  }, 30_000);

  // The only test here that may skip: enforcement needs a kernel with AppArmor (SPEC §9). Jest
  // reports it as skipped, and the reason is printed.
  itIfAppArmor('runs a bundle that requires AppArmor confined by its profile where the kernel enforces AppArmor', async () => {
    const runner = await runnerWith(facts);
    const a = assignmentFor(fx.bundles.armored, { app: 'agent-confined', environment: 'hardened', generation: ++generation });
    const out = await runner.run(a, fx.bundles.armored.path);
    expect(out.state).toBe('running');
    const st = runcState(stateDir, runner.containerId(a));
    expect(st?.status).toBe('running');
    expect(readFileSync(`/proc/${st!.pid}/attr/current`, 'utf8')).toMatch(/\(enforce\)/);
  }, 30_000);
});
