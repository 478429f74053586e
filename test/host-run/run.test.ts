/**
 * `ct run BUNDLE.ctp` (issue 11 deliverable 7), as users run it: the real `ct` binary, examples/http
 * packed and signed with `ct` (two transparency logs), root, runc, netavark and aardvark-dns.
 *  - a verified bundle runs in the foreground with `-p`: curl answers 200 on the published port,
 *    the app's stdout and stderr reach ours apart, SIGTERM stops it and tears its network down;
 *  - the container's exit code is ct's;
 *  - a tampered bundle never runs: nothing is created (no runc state, no netns, no bridge);
 *  - a port the bundle does not declare is refused before anything starts;
 *  - the bundle's monitor runs under `ct run` as on a host: an exec its rules do not allow is
 *    reported (bpftrace, the container's cgroup);
 *  - a bundle's own seccomp profile that lets through more than RuntimeDefault is refused, with no
 *    --policies as well.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lchownSync, symlinkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { containerIdFor } from '../../src/protocol/container-id.js';
import { openCtp } from '../../src/bundle/read.js';
import { rewriteCtp } from '../../src/bundle/write.js';
import { startLogServer, type LogServer } from '../../src/tlog/server.js';
import { findNetavark } from '../../host/network/index.js';
import { repoRoot, runCt } from '../support/cli.js';
import { freePort } from '../support/registry.js';
import { runcList, until } from '../host-agent/fixture.js';
import { listArtifacts } from '../host-network/artifacts.js';
import { claimSubnetBase } from '../support/subnets.js';
import { startSigstoreMock } from '../support/sigstore-mock.js';
import { GH_ISSUER, GH_SAN, signCtpKeyless } from '../sigstore/fixtures.js';

/** A TEST-NET address no interface of this machine holds now (this VM's eth0 is in 192.0.2.0/24). */
function absentAddress(): string {
  const own = new Set(Object.values(networkInterfaces()).flatMap((l) => l ?? []).map((a) => a.address));
  const free = ['192.0.2.1', '192.0.2.77', '198.51.100.7', '203.0.113.9'].find((a) => !own.has(a));
  if (!free) throw new Error('every TEST-NET address tried is on this machine');
  return free;
}

const pid = process.pid;
const POOL = claimSubnetBase();
const PREFIX = `ctr${pid % 100000}`;

interface Run { child: ChildProcess; stdout: string; stderr: string; exit: Promise<number | null> }

describe('ct run', () => {
  let dir: string;
  const p = (n: string) => join(dir, n);
  let logs: LogServer[] = [];
  const state = () => p('state');
  // Only this file's: other files' `ct run`s (examples, README) make run-<app>-<hex> namespaces and
  // rules at the same time, so every networked run here is named run-web-<pid>….
  const artifacts = () => listArtifacts({ netnsPrefix: `run-web-${pid}`, bridgePrefix: PREFIX, subnetBase: POOL });

  const ct = async (args: string[]) => {
    const r = await runCt(args, { cwd: dir, env: { SOURCE_DATE_EPOCH: '0' } });
    if (r.code !== 0) throw new Error(`ct ${args.join(' ')} → exit ${r.code}\n${r.stderr}`);
    return r.stdout;
  };
  const common = () => ['--trust-store', p('trust.json'), '--state-dir', state(), '--network-pool', POOL, '--bridge-prefix', PREFIX];
  const start = (args: string[]): Run => {
    const child = spawn(process.execPath, [join(repoRoot, 'bin', 'ct.js'), 'run', ...args, ...common()], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    const r: Run = { child, stdout: '', stderr: '', exit: new Promise((res) => child.once('exit', (code) => res(code))) };
    child.stdout!.on('data', (d: Buffer) => (r.stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (r.stderr += d.toString()));
    return r;
  };
  const sign = async (src: string, name: string) => {
    await ct(['pack', src, '-o', p(`${name}.ctp`)]);
    await ct(['sign', p(`${name}.ctp`), '--key', p('signer.key'), '--log', logs[0].url, '--log', logs[1].url, '--out', p(`${name}.signed.ctp`)]);
  };

  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error('ct run network tests run as root (CI does)');
    await findNetavark();
    dir = mkdtempSync(join(tmpdir(), 'ct-run-'));
    logs = [
      await startLogServer({ db: p('log1.db'), logId: 'log-one', operator: 'Operator One' }),
      await startLogServer({ db: p('log2.db'), logId: 'log-two', operator: 'Operator Two' }),
    ];
    await ct(['keygen', '--out', p('signer'), '--no-password']);
    await ct(['trust-store', 'init', '--id', 'run', '-o', p('trust.json')]);
    await ct(['trust-store', 'add-key', p('trust.json'), '--role', 'builders', '--key', p('signer.pub')]);
    for (const l of logs) await ct(['trust-store', 'add-log', p('trust.json'), '--id', l.logId, '--operator', l.operator, '--public-key', l.publicKey, '--url', l.url]);
    await sign(join(repoRoot, 'examples', 'http'), 'http');
    // A batch app: one line on each stream, then exit 7.
    mkdirSync(p('batch/bin'), { recursive: true });
    writeFileSync(p('batch/ct.toml'), [
      'name = "batch"', 'version = "1.0.0"', '[image]', 'architecture = "amd64"', 'os = "linux"',
      '[[include]]', 'from = "/bin/busybox"', 'to = "bin/busybox"',
      '[runtime]', 'user = "65534:65534"', 'read_only_rootfs = true', 'capabilities = []', 'network = "none"',
      'command = ["/bin/busybox", "sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 7"]', '',
    ].join('\n'));
    await sign(p('batch'), 'batch');
    // A networked app with a port that exits on its own after 1 s (exit 3).
    mkdirSync(p('brief/bin'), { recursive: true });
    writeFileSync(p('brief/ct.toml'), [
      'name = "brief"', 'version = "1.0.0"', '[image]', 'architecture = "amd64"', 'os = "linux"',
      '[[include]]', 'from = "/bin/busybox"', 'to = "bin/busybox"',
      '[runtime]', 'user = "65534:65534"', 'read_only_rootfs = true', 'capabilities = []', 'network = "bridge"', 'ports = ["8080/tcp"]',
      'command = ["/bin/busybox", "sh", "-c", "echo up; /bin/busybox sleep 1; exit 3"]', '',
    ].join('\n'));
    await sign(p('brief'), 'brief');
    // An app whose PID 1 ignores SIGTERM, and whose manifest gives it a grace of 1 s.
    mkdirSync(p('stubborn/bin'), { recursive: true });
    writeFileSync(p('stubborn/ct.toml'), [
      'name = "stubborn"', 'version = "1.0.0"', '[image]', 'architecture = "amd64"', 'os = "linux"',
      '[[include]]', 'from = "/bin/busybox"', 'to = "bin/busybox"',
      '[runtime]', 'user = "65534:65534"', 'read_only_rootfs = true', 'capabilities = []', 'network = "none"', 'stop_grace_period = 1',
      'command = ["/bin/busybox", "sh", "-c", "trap \\"\\" TERM; echo up; while :; do /bin/busybox sleep 1; done"]', '',
    ].join('\n'));
    await sign(p('stubborn'), 'stubborn');
    // A watched app: its monitor rules allow busybox only; it runs a copy of busybox under another name.
    mkdirSync(p('watched-security'), { recursive: true });
    mkdirSync(p('watched'), { recursive: true });
    writeFileSync(p('watched-security/monitor.yaml'), 'version: 1\nrules:\n  - name: unexpected-exec\n    kind: exec\n    allow: [/bin/busybox, /proc/self/exe]\n    severity: critical\n');
    writeFileSync(p('watched/ct.toml'), [
      'name = "watched"', 'version = "1.0.0"', '[image]', 'architecture = "amd64"', 'os = "linux"',
      '[[include]]', 'from = "/bin/busybox"', 'to = "bin/busybox"', '[[include]]', 'from = "/bin/busybox"', 'to = "bin/intruder"',
      '[runtime]', 'user = "65534:65534"', 'read_only_rootfs = true', 'capabilities = []', 'network = "none"',
      'command = ["/bin/busybox", "sh", "-c", "/bin/busybox sleep 1; /bin/intruder true; echo done"]', '',
    ].join('\n'));
    await ct(['pack', p('watched'), '--security-dir', p('watched-security'), '-o', p('watched.ctp')]);
    await ct(['sign', p('watched.ctp'), '--key', p('signer.key'), '--log', logs[0].url, '--log', logs[1].url, '--out', p('watched.signed.ctp')]);
    // An app whose own seccomp profile allows everything: as nobody without capabilities it would
    // get a user namespace with every capability (unshare -Ur) were the profile to replace RuntimeDefault.
    mkdirSync(p('unconfined-security'), { recursive: true });
    mkdirSync(p('unconfined'), { recursive: true });
    writeFileSync(p('unconfined-security/seccomp.json'), '{"defaultAction":"SCMP_ACT_ALLOW"}');
    writeFileSync(p('unconfined/ct.toml'), [
      'name = "unconfined"', 'version = "1.0.0"', '[image]', 'architecture = "amd64"', 'os = "linux"',
      '[[include]]', 'from = "/bin/busybox"', 'to = "bin/busybox"',
      '[runtime]', 'user = "65534:65534"', 'read_only_rootfs = true', 'capabilities = []', 'network = "none"',
      'command = ["/bin/busybox", "unshare", "-Ur", "/bin/busybox", "grep", "CapEff", "/proc/self/status"]', '',
    ].join('\n'));
    await ct(['pack', p('unconfined'), '--security-dir', p('unconfined-security'), '-o', p('unconfined.ctp')]);
    await ct(['sign', p('unconfined.ctp'), '--key', p('signer.key'), '--log', logs[0].url, '--log', logs[1].url, '--out', p('unconfined.signed.ctp')]);
    // Tampered after signing: the command changed in the (signed, covered) manifest.
    const signed = await openCtp(p('http.signed.ctp'));
    const manifest = signed.file('manifest.toml').toString('utf8').replace('command = [ "/bin/serve" ]', 'command = [ "/bin/sh", "-c", "id" ]');
    expect(manifest).toContain('"id"');
    await rewriteCtp(p('http.signed.ctp'), p('tampered.ctp'), { add: { 'manifest.toml': Buffer.from(manifest) } });
  }, 120_000);

  afterAll(async () => {
    for (const l of logs) await l.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('runs examples/http with -p: curl answers 200; SIGTERM stops it and leaves no container or network', async () => {
    const port = await freePort();
    const run = start([p('http.signed.ctp'), '-p', `127.0.0.1:${port}:8080`, '--name', `run-web-${pid}`]);
    try {
      await until('ct run serving', () => /running run-web-/.test(run.stderr), 30_000).catch((e: Error) => {
        throw new Error(`${e.message}\n${run.stderr}`);
      });
      expect(run.stderr).toMatch(/^VERIFIED: .*http\.signed\.ctp/m);
      const res = await until('the published port answering', async () => fetch(`http://127.0.0.1:${port}/`).catch(() => undefined), 15_000);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe(readFileSync(join(repoRoot, 'examples/http/www/index.html'), 'utf8'));
      // The app's stdout (its start line) on ours; busybox httpd logs each request on stderr.
      await until('the start line on stdout', () => run.stdout.includes('serving /www on port 8080'), 10_000);
      await until('the request logged on stderr', () => /response:200/.test(run.stderr), 10_000);
      expect(run.stdout).not.toMatch(/response:200/);
      expect(runcList(state()).map((c) => c.id)).toEqual([`run-web-${pid}`]);
      expect(artifacts().netns).toEqual([`run-web-${pid}`]);
    } finally {
      run.child.kill('SIGTERM');
    }
    const t0 = Date.now();
    const code = await run.exit;
    // The example's shell (PID 1) ends httpd on TERM and exits 0, at once: not a KILL after the
    // 10 s grace (137), as when httpd itself was PID 1 and the kernel ignored the TERM for it.
    expect(code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(run.stderr).toMatch(/SIGTERM: stopping run-web-/);
    expect(runcList(state())).toEqual([]);
    expect(artifacts()).toEqual({ netns: [], bridges: [], veths: [], rules: [] });
    expect(readdirSync(join(state(), 'rootfs'))).toEqual([]);
    await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
  }, 60_000);

  it('SIGTERM while the container is being started stops it once it runs: ct run ends, nothing left', async () => {
    const name = `run-web-${pid}-early`;
    const run = start([p('http.signed.ctp'), '--name', name]);
    // The supervisor's pipes appear as the start begins; runc has not run the app yet.
    const pipe = join(state(), 'containers', name, 'logs', 'stdout.pipe');
    const deadline = Date.now() + 30_000;
    while (!existsSync(pipe) && Date.now() < deadline && run.child.exitCode === null) await new Promise((r) => setImmediate(r));
    expect(existsSync(pipe)).toBe(true);
    run.child.kill('SIGTERM');
    const t0 = Date.now();
    // Before, the TERM was taken while the container was only created (stop() had nothing to stop)
    // and ct run then followed the started app until a second signal.
    const code = await Promise.race([run.exit, new Promise<string>((r) => setTimeout(() => r('still running'), 15_000))]);
    // A second TERM kills it (and ct run clears up): nothing is left running for the next tests.
    if (code === 'still running') {
      run.child.kill('SIGTERM');
      await run.exit;
    }
    // 0 once the app's trap is set; 137 (KILL after the grace) when the TERM came before it was.
    expect([[0, 137].includes(code as number), Date.now() - t0 < 15_000]).toEqual([true, true]);
    expect(run.stderr).toMatch(/SIGTERM: stopping run-web-/);
    expect(runcList(state())).toEqual([]);
    expect(artifacts()).toEqual({ netns: [], bridges: [], veths: [], rules: [] });
  }, 60_000);

  it('a ct run killed with SIGKILL leaves its container running; ct host rm removes it with its network and frees the port', async () => {
    const port = await freePort();
    const name = `run-web-${pid}-killed`;
    const run = start([p('http.signed.ctp'), '-p', `127.0.0.1:${port}:8080`, '--name', name]);
    await until('ct run serving', () => run.stderr.includes(`running ${name}`), 30_000).catch((e: Error) => {
      throw new Error(`${e.message}\n${run.stderr}`);
    });
    // While it runs, `ct host` does not start it again or remove it under its ct run's feet.
    const busy = await runCt(['host', 'restart', name, '--state-dir', state()], { cwd: dir });
    expect([busy.code, busy.stderr]).toEqual([expect.any(Number), expect.stringMatching(new RegExp(`error\\[CONTAINER_BUSY\\]: ${name} is watched by a running \`ct run\` \\(pid ${run.child.pid}\\)`))]);
    run.child.kill('SIGKILL');
    await run.exit;
    // The container outlives its ct run (runc's supervisor is its own process), published port and all.
    expect((await until('the port answering', async () => fetch(`http://127.0.0.1:${port}/`).catch(() => undefined), 15_000)).status).toBe(200);
    // Its name stays taken while its container is here: a new run of it is refused, saying how to end it.
    const again = await runCt(['run', p('http.signed.ctp'), '--name', name, ...common()], { cwd: dir });
    expect([again.code, again.stderr]).toEqual([1, expect.stringContaining(`error[USAGE]: a container named ${name} is here already (running, in ${state()}): \`ct host rm ${name} --state-dir ${state()}\` removes it`)]);
    const rm = await runCt(['host', 'rm', name, '--state-dir', state()], { cwd: dir });
    expect([rm.code, rm.stdout.trim()]).toEqual([0, `${name}: removed`]);
    expect(runcList(state())).toEqual([]);
    // Its namespace, bridge, veth and rules went with it (they stayed: the port was refused to the next run).
    expect(artifacts()).toEqual({ netns: [], bridges: [], veths: [], rules: [] });
    await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
    // The killed run's claim went with it: the name is free.
    expect(readdirSync(join(state(), 'run-names'))).not.toContain(name);
  }, 60_000);

  it('a name a killed ct run left is refused, saying so; ct host rm clears what it left; a live holder is named by its pid', async () => {
    const stateDir = p('killed-runs');
    // What SIGKILL mid-unpack leaves: the claim of a process that is gone, and part of a root filesystem.
    mkdirSync(join(stateDir, 'run-names', 'batchy'), { recursive: true, mode: 0o700 });
    writeFileSync(join(stateDir, 'run-names', 'batchy', 'owner.json'), JSON.stringify({ pid: 4_194_305, start: '1' }));
    mkdirSync(join(stateDir, 'rootfs', 'batchy', 'usr'), { recursive: true });
    chmodSync(stateDir, 0o700);
    const args = (name: string) => ['run', p('batch.signed.ctp'), ...common().slice(0, 2), '--state-dir', stateDir, '--name', name, '--network-pool', POOL, '--bridge-prefix', PREFIX];
    const r = await runCt(args('batchy'), { cwd: dir });
    expect([r.code, r.stderr]).toEqual([1, expect.stringContaining(`error[USAGE]: a \`ct run\` named batchy was killed before it could clean up: \`ct host rm batchy --state-dir ${stateDir}\` clears what it left`)]);
    expect(readdirSync(join(stateDir, 'rootfs', 'batchy'))).toEqual(['usr']);
    // `ct host ps` shows it (a run's random name is nowhere else to be seen); what no run can have made there, it does not print.
    mkdirSync(join(stateDir, 'run-names', 'evil\u001b[2J\nSTATE fake'), { mode: 0o700 });
    writeFileSync(join(stateDir, 'run-names', 'evil\u001b[2J\nSTATE fake', 'owner.json'), JSON.stringify({ pid: 4_194_305, start: '1' }));
    const ps = await runCt(['host', 'ps', '--state-dir', stateDir], { cwd: dir });
    expect(ps.stdout).not.toContain('\u001b');
    rmSync(join(stateDir, 'run-names', 'evil\u001b[2J\nSTATE fake'), { recursive: true });
    expect([ps.code, ps.stdout.trim().split('\n').at(-1)]).toEqual([0, `left by a killed \`ct run\` (no container; \`ct host rm NAME --state-dir ${stateDir}\` clears each): batchy`]);
    // A claim whose owner runs (this test's own process).
    mkdirSync(join(stateDir, 'run-names', 'live'), { mode: 0o700 });
    writeFileSync(join(stateDir, 'run-names', 'live', 'owner.json'), JSON.stringify({ pid: process.pid, start: readFileSync(`/proc/${process.pid}/stat`, 'utf8').split(') ')[1].split(' ')[19] }));
    const live = await runCt(args('live'), { cwd: dir });
    expect([live.code, live.stderr]).toEqual([1, expect.stringContaining(`error[USAGE]: a \`ct run\` named live (pid ${process.pid}) is starting or running here`)]);
    // Cleared as the message says (no container: only the claim and the partial root filesystem), the name runs again and leaves nothing.
    const cleared = await runCt(['host', 'rm', 'batchy', '--state-dir', stateDir], { cwd: dir });
    expect([cleared.code, cleared.stdout.trim()]).toEqual([0, 'batchy: removed (what a killed `ct run` left: no container)']);
    expect(existsSync(join(stateDir, 'rootfs', 'batchy'))).toBe(false);
    expect((await runCt(args('batchy'), { cwd: dir })).code).toBe(7);
    expect(readdirSync(join(stateDir, 'run-names'))).toEqual(['live']);
    // Neither the live run nor a cleared one is listed as left.
    expect((await runCt(['host', 'ps', '--state-dir', stateDir], { cwd: dir })).stdout).not.toContain('killed');
  }, 60_000);

  it("ct host stop of a ct run's container gives it the manifest's stop_grace_period, not 10 s", async () => {
    const name = `run-stubborn-${pid}`;
    const run = start([p('stubborn.signed.ctp'), '--name', name]);
    await until('ct run running', () => run.stdout.includes('up'), 30_000).catch((e: Error) => {
      throw new Error(`${e.message}\n${run.stderr}`);
    });
    const t0 = Date.now();
    const stop = await runCt(['host', 'stop', name, '--state-dir', state()], { cwd: dir });
    const took = Date.now() - t0;
    // Killed after the grace (it ignores TERM): 1 s, far below the 10 s default.
    expect([stop.code, stop.stdout.trim()]).toEqual([0, `${name}: stopped (exit 137)`]);
    expect(took).toBeLessThan(7_000);
    expect(await run.exit).toBe(137);
    expect(runcList(state())).toEqual([]);
  }, 60_000);

  it('a container with -p that exits on its own: its netns, bridge, veth and rules go with it; ct host stop after it is fine', async () => {
    const name = `run-web-${pid}-brief`;
    const port = await freePort();
    const run = start([p('brief.signed.ctp'), '-p', `127.0.0.1:${port}:8080`, '--name', name]);
    await until('the app up', () => run.stdout.includes('up'), 30_000).catch((e: Error) => {
      throw new Error(`${e.message}\n${run.stderr}`);
    });
    expect(artifacts().netns).toEqual([name]);
    expect(await run.exit).toBe(3);
    expect(runcList(state())).toEqual([]);
    expect(artifacts()).toEqual({ netns: [], bridges: [], veths: [], rules: [] });
    // Nothing is left to stop: said so, twice alike.
    for (let i = 0; i < 2; i++) {
      const stop = await runCt(['host', 'stop', name, '--state-dir', state()], { cwd: dir });
      expect(stop.stderr).not.toMatch(/TypeError|at .*\.js:\d+/);
      expect(artifacts()).toEqual({ netns: [], bridges: [], veths: [], rules: [] });
    }
  }, 60_000);

  it('propagates the exit code and keeps stdout and stderr apart', async () => {
    const run = start([p('batch.signed.ctp')]);
    expect(await run.exit).toBe(7);
    expect(run.stdout).toBe('to-stdout\n');
    expect(run.stderr).toMatch(/^to-stderr$/m);
    expect(runcList(state())).toEqual([]);
  }, 30_000);

  it('watches the app with the bundle\'s monitor rules: an exec they do not allow is reported', async () => {
    const run = start([p('watched.signed.ctp')]);
    expect(await run.exit).toBe(0);
    expect(run.stdout).toBe('done\n');
    expect(run.stderr).not.toMatch(/^monitor: .* not watched/m);
    expect(run.stderr).toMatch(/^monitor: critical unexpected-exec: .*"path":"\/bin\/intruder"/m);
    expect(run.stderr).not.toMatch(/unexpected-exec: .*"path":"\/bin\/busybox"/);
    expect(runcList(state())).toEqual([]);
  }, 60_000);

  it("refuses a bundle whose own seccomp profile does not confine, without --policies too (POLICY_VIOLATION); nothing runs", async () => {
    const run = start([p('unconfined.signed.ctp')]);
    expect(await run.exit).toBe(4);
    expect(run.stderr).toMatch(/error\[POLICY_VIOLATION\].*seccomp\.json does not confine/);
    expect(run.stdout).not.toMatch(/CapEff/);
    expect(runcList(state())).toEqual([]);
  }, 30_000);

  it('never runs a tampered bundle: rejected, nothing created', async () => {
    const fresh = p('state-tampered');
    const child = await runCt(['run', p('tampered.ctp'), '-p', `127.0.0.1:${await freePort()}:8080`, '--name', `run-web-${pid}-tampered`, ...common().slice(0, 2), '--state-dir', fresh, '--network-pool', POOL, '--bridge-prefix', PREFIX], { cwd: dir });
    expect(child.code).not.toBe(0);
    expect(child.stderr).toMatch(/^REJECTED: .*tampered\.ctp \[[A-Z_]+\]/m);
    expect(child.stderr).not.toMatch(/running /);
    // Not even a state directory: verification comes before anything on this machine.
    expect(existsSync(fresh)).toBe(false);
    expect(artifacts()).toEqual({ netns: [], bridges: [], veths: [], rules: [] });
  }, 30_000);

  it('refuses a state directory another user made or may write (a squatted default), touching nothing in it', async () => {
    const squatted = p('state-squatted');
    mkdirSync(squatted, { mode: 0o700 });
    writeFileSync(join(squatted, 'planted'), 'x');
    chownSync(squatted, 65534, 65534);
    const open = p('state-open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    // A symlink another user planted, to a directory of ours.
    const planted = p('state-planted');
    mkdirSync(p('ours'), { mode: 0o700 });
    symlinkSync(p('ours'), planted);
    lchownSync(planted, 65534, 65534);
    for (const [stateDir, why] of [[squatted, 'is owned by uid 65534'], [open, 'is writable by everyone'], [planted, 'is a symlink owned by uid 65534']]) {
      const r = await runCt(['run', p('batch.signed.ctp'), ...common().slice(0, 2), '--state-dir', stateDir, '--network-pool', POOL, '--bridge-prefix', PREFIX], { cwd: dir });
      expect([r.code, r.stderr]).toEqual([1, expect.stringMatching(new RegExp(`^error\\[USAGE\\]: the state directory .* ${why}`, 'm'))]);
      expect(r.stdout).toBe('');
    }
    expect(readdirSync(squatted)).toEqual(['planted']);
    expect(readdirSync(open)).toEqual([]);
    expect(readdirSync(p('ours'))).toEqual([]);
  }, 30_000);

  it('refuses a --name that is no container name (a path, an agent app id) before anything is unpacked or removed', async () => {
    const base = p('names');
    const stateDir = join(base, 'a', 'state');
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    writeFileSync(join(base, 'a', 'keep'), 'x');
    for (const name of ['../..', 'a/../..', '.hidden', containerIdFor('production', 'web'), `${containerIdFor('production', 'web')}-3`, 'ct-mine']) {
      const r = await runCt(['run', p('batch.signed.ctp'), ...common().slice(0, 2), '--state-dir', stateDir, '--name', name, '--network-pool', POOL, '--bridge-prefix', PREFIX], { cwd: dir });
      expect([name, r.code, r.stderr]).toEqual([name, 1, expect.stringMatching(/^error\[USAGE\]: --name /m)]);
    }
    expect(readFileSync(join(base, 'a', 'keep'), 'utf8')).toBe('x');
    expect(readdirSync(stateDir)).toEqual([]);
  }, 30_000);

  it("never touches another run's root filesystem: a name whose directory exists is refused, and a host agent's state directory too", async () => {
    // What a `ct run --name web` still unpacking looks like: its claim, and its root filesystem.
    const stateDir = p('taken');
    mkdirSync(join(stateDir, 'run-names', 'web'), { recursive: true, mode: 0o700 });
    mkdirSync(join(stateDir, 'rootfs', 'web', 'data'), { recursive: true, mode: 0o700 });
    writeFileSync(join(stateDir, 'rootfs', 'web', 'data', 'precious'), 'x');
    const r = await runCt(['run', p('batch.signed.ctp'), ...common().slice(0, 2), '--state-dir', stateDir, '--name', 'web', '--network-pool', POOL, '--bridge-prefix', PREFIX], { cwd: dir });
    expect([r.code, r.stderr]).toEqual([1, expect.stringMatching(/^error\[USAGE\]: a `ct run` named web is starting or running here, or one was killed: remove .*run-names\/web and .*rootfs\/web \(when no `ct run` of that name runs\)/m)]);
    expect(readFileSync(join(stateDir, 'rootfs', 'web', 'data', 'precious'), 'utf8')).toBe('x');
    // A root filesystem a killed run left, without a claim, is no obstacle: the run takes it over and leaves nothing.
    rmSync(join(stateDir, 'run-names', 'web'), { recursive: true });
    const again = await runCt(['run', p('batch.signed.ctp'), ...common().slice(0, 2), '--state-dir', stateDir, '--name', 'web', '--network-pool', POOL, '--bridge-prefix', PREFIX], { cwd: dir });
    expect(again.code).toBe(7); // the batch app's own exit status
    expect([readdirSync(join(stateDir, 'rootfs')), readdirSync(join(stateDir, 'run-names'))]).toEqual([[], []]);
    const agentDir = p('agent-state');
    mkdirSync(agentDir, { mode: 0o700 });
    writeFileSync(join(agentDir, 'enrolment.json'), '{}');
    const a = await runCt(['run', p('batch.signed.ctp'), ...common().slice(0, 2), '--state-dir', agentDir, '--network-pool', POOL, '--bridge-prefix', PREFIX], { cwd: dir });
    expect([a.code, a.stderr]).toEqual([1, expect.stringMatching(/^error\[USAGE\]: the state directory .* is a host agent's/m)]);
    expect(readdirSync(agentDir)).toEqual(['enrolment.json']);
  }, 30_000);

  it.each([
    ['a port the bundle does not declare', () => '127.0.0.1', 9999, 'container port 9999'],
    // A TEST-NET address proven absent from this machine's interfaces now: its DNAT rule could never match.
    ['an address this machine does not have', absentAddress, 8080, 'which is not an address of this machine'],
  ])('refuses %s before anything starts (PORT_NOT_ALLOWED)', async (_what, address, container, says) => {
    const at = address();
    const r = await runCt(['run', p('http.signed.ctp'), '-p', `${at}:${await freePort()}:${container}`, '--name', `run-web-${pid}-port`, ...common()], { cwd: dir });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/error\[PORT_NOT_ALLOWED\]/);
    expect(r.stderr).toContain(says);
    if (container === 8080) expect(r.stderr).toContain(`published on ${at},`);
    expect(runcList(state())).toEqual([]);
    expect(artifacts()).toEqual({ netns: [], bridges: [], veths: [], rules: [] });
  }, 30_000);

  it('a keylessly signed bundle runs when --policies name its workflow; without them it proves nothing; a --certificate-identity given wins', async () => {
    const m = await startSigstoreMock();
    try {
      await signCtpKeyless(m, p('batch.ctp'), p('batch.keyless.ctp'));
      writeFileSync(p('root.json'), JSON.stringify(m.trustedRoot));
    } finally {
      await m.close();
    }
    mkdirSync(p('keyless-policies'));
    writeFileSync(p('keyless-policies/local.policy.yaml'), ['apiVersion: cerro-torre.dev/v2', 'kind: Policy', 'name: local', 'match:', '  environments: [local]', 'signers:', `  - issuer: ${GH_ISSUER}`, `    subject: ${GH_SAN}`, 'attestations:', '  - predicateType: https://slsa.dev/provenance/v1', 'logQuorum: 1', ''].join('\n'));
    const stateDir = p('keyless-runs');
    const args = (...extra: string[]) => ['run', p('batch.keyless.ctp'), '--trust-store', p('trust.json'), '--trusted-root', p('root.json'), '--log-quorum', '1', '--state-dir', stateDir, '--network-pool', POOL, '--bridge-prefix', PREFIX, ...extra];
    const bare = await runCt(args(), { cwd: dir });
    expect(bare.code).toBe(1);
    expect(bare.stderr).toContain('[UNCOVERED_FILE]');
    expect(bare.stderr).toMatch(/Sigstore attestation\(s\) ignored: no keyless identity given/);
    const judged = await runCt(args('--policies', p('keyless-policies')), { cwd: dir });
    expect([judged.code, judged.stdout]).toEqual([7, 'to-stdout\n']);
    const other = await runCt(args('--policies', p('keyless-policies'), '--certificate-oidc-issuer', GH_ISSUER, '--certificate-identity', 'https://github.com/acme/other/.github/workflows/release.yml@refs/heads/main'), { cwd: dir });
    expect(other.code).toBe(3);
    expect(other.stderr).toContain('[IDENTITY_MISMATCH]');
    // An identity is a subject from an issuer: a subject alone is refused, not silently ignored (ct verify-bundle's rule).
    const half = await runCt(args('--certificate-identity', GH_SAN), { cwd: dir });
    expect([half.code, half.stderr]).toEqual([1, expect.stringContaining('--certificate-oidc-issuer is required with a certificate identity')]);
    const issuerOnly = await runCt(args('--certificate-oidc-issuer', GH_ISSUER), { cwd: dir });
    expect([issuerOnly.code, issuerOnly.stderr]).toEqual([1, expect.stringContaining('--certificate-identity or --certificate-identity-regexp is required')]);
  }, 60_000);
});
