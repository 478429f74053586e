import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { runtimeDefault } from '../../src/profiles/seccomp/index.js';
import { buildRuntimePlan } from '../../host/enforce/index.js';
import { collectFacts, type HostFacts } from '../../host/facts.js';
import {
  bpftraceString,
  compileRules,
  Monitor,
  parseRules,
  toFalcoRules,
  toTetragonPolicy,
  type MonitorEvent,
  type MonitorRules,
} from '../../host/monitor/index.js';
import { RuncRuntime } from '../../host/runtime/index.js';
import { runCt } from '../support/cli.js';
import { DIGEST, makeRootfs, requireHostTools } from './support.js';
import { codeOf } from '../support/error-code.js';

const RULES = `version: 1
rules:
  - name: unexpected-exec
    kind: exec
    # busybox runs some applets by re-executing itself through /proc/self/exe
    allow: [/bin/sh, /proc/self/exe]
    severity: critical
  - name: seccomp-denials
    kind: denied-syscalls
  - name: module-load
    kind: module-load
  - name: namespace-escape
    kind: namespace-escape
  - name: proc-sys-write
    kind: proc-sys-write
`;


describe('rule language', () => {
  it('parses the documented example', () => {
    const r = parseRules(RULES);
    expect(r.rules.map((x) => x.kind)).toEqual(['exec', 'denied-syscalls', 'module-load', 'namespace-escape', 'proc-sys-write']);
    expect(r.rules[0]).toEqual({ name: 'unexpected-exec', kind: 'exec', severity: 'critical', allow: ['/bin/sh', '/proc/self/exe'] });
    expect(r.rules[1].severity).toBe('warning');
  });

  it.each([
    ['a quote in a path', 'allow: [\'/bin/sh") } BEGIN { system("id") } //\']'],
    ['program text in a path', 'allow: ["/bin/sh\\" || 1 == 1 || \\""]'],
    ['a newline in a path', 'allow: ["/bin/sh\\nBEGIN { exit() }"]'],
    ['a relative path', 'allow: [bin/sh]'],
    ['a dot-dot path', 'allow: [/bin/../usr/bin/env]'],
    ['a backslash', 'allow: ["/bin/sh\\\\"]'],
    ['a path too long for the bpftrace buffer', `allow: [/${'a'.repeat(130)}]`],
    ['an unknown field', 'allow: [/bin/sh]\n    program: "BEGIN { system(\\"id\\") }"'],
  ])('refuses %s with MONITOR_RULES_INVALID', (_what, line) => {
    const text = `version: 1\nrules:\n  - name: x\n    kind: exec\n    ${line}\n`;
    expect(codeOf(() => parseRules(text))).toBe('MONITOR_RULES_INVALID');
  });

  it.each([
    ['an unknown kind', 'version: 1\nrules:\n  - name: x\n    kind: kprobe\n'],
    ['a rule name with spaces', 'version: 1\nrules:\n  - name: "a b"\n    kind: module-load\n'],
    ['an unknown syscall', 'version: 1\nrules:\n  - name: x\n    kind: denied-syscalls\n    syscalls: ["mkdir); system(1"]\n'],
    ['YAML aliases', 'version: 1\nrules:\n  - &r\n    name: x\n    kind: module-load\n  - *r\n'],
    ['version 2', 'version: 2\nrules:\n  - name: x\n    kind: module-load\n'],
    ['no rules', 'version: 1\nrules: []\n'],
    ['not YAML', 'version: [1\n'],
  ])('refuses %s with MONITOR_RULES_INVALID', (_what, text) => {
    expect(codeOf(() => parseRules(text))).toBe('MONITOR_RULES_INVALID');
  });

  it('never puts rule text other than validated values into the program', () => {
    const rules = parseRules('version: 1\nrules:\n  - name: weird-name\n    kind: exec\n    allow: [/opt/a+b@c/run-1.2]\n  - name: d\n    kind: denied-syscalls\n    syscalls: [mkdir]\n');
    const { text } = compileRules([{ container: 'c1', cgroupDir: '/sys/fs/cgroup/unified/cerro-torre/c1', rules }]);
    expect(text).toContain('"/opt/a+b@c/run-1.2"');
    expect(text).not.toContain('weird-name'); // names become integers
    expect(text).toContain('args->id == 83'); // syscall names become numbers (x86_64 mkdir)
    expect(text).not.toContain('mkdir');
  });

  it('escapes bpftrace strings and refuses targets that are not cgroups or container ids', () => {
    expect(bpftraceString('a"b\\c')).toBe('"a\\"b\\\\c"');
    expect(codeOf(() => bpftraceString('a\nb'))).toBe('MONITOR_RULES_INVALID');
    const rules = parseRules(RULES);
    expect(codeOf(() => compileRules([{ container: 'c1', cgroupDir: '/sys/fs/cgroup/x") { system("id', rules }]))).toBe('MONITOR_RULES_INVALID');
    expect(codeOf(() => compileRules([{ container: 'c1', cgroupDir: '/tmp/x', rules }]))).toBe('MONITOR_RULES_INVALID');
    expect(codeOf(() => compileRules([{ container: 'a b', cgroupDir: '/sys/fs/cgroup/x', rules }]))).toBe('MONITOR_RULES_INVALID');
  });
});

describe('exporters', () => {
  const rules = parseRules(RULES);

  it('writes the same rules as Falco rules', () => {
    const doc = parseYaml(toFalcoRules(rules, { container: 'web-1' })) as { rule: string; condition: string; priority: string }[];
    expect(doc.map((r) => r.rule)).toEqual(rules.rules.map((r) => `cerro-torre:${r.name}`));
    expect(doc[0].condition).toBe('spawned_process and not proc.exepath in ("/bin/sh", "/proc/self/exe") and container.name = "web-1"');
    expect(doc[0].priority).toBe('CRITICAL');
    expect(doc[2].condition).toMatch(/^evt.type in \(init_module, finit_module\)/);
    expect(doc[4].condition).toContain('fd.name startswith /proc/sys/');
  });

  it('writes the same rules as a Tetragon TracingPolicy', () => {
    const doc = parseYaml(toTetragonPolicy(rules, { container: 'web-1' })) as {
      apiVersion: string; kind: string; metadata: { name: string };
      spec: { kprobes: { call: string; selectors?: { matchArgs?: { values: string[] }[] }[] }[]; tracepoints: { subsystem: string; event: string }[] };
    };
    expect(doc).toMatchObject({ apiVersion: 'cilium.io/v1alpha1', kind: 'TracingPolicy', metadata: { name: 'cerro-torre-web-1' } });
    expect(doc.spec.kprobes.map((k) => k.call)).toEqual(['security_bprm_check', 'sys_init_module', 'sys_finit_module', 'sys_unshare', 'sys_setns', 'security_file_permission']);
    expect(doc.spec.kprobes[0].selectors?.[0].matchArgs?.[0].values).toEqual(['/bin/sh', '/proc/self/exe']);
    expect(doc.spec.tracepoints).toEqual([expect.objectContaining({ subsystem: 'raw_syscalls', event: 'sys_exit' })]);
  });
});

describe('`ct profile monitor-export`', () => {
  it('exports checked rules and refuses hostile ones with exit 10', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ct-mon-'));
    try {
      await writeFile(join(dir, 'ok.yaml'), RULES);
      const falco = await runCt(['profile', 'monitor-export', join(dir, 'ok.yaml'), '--format', 'falco', '--container', 'web-1']);
      expect(falco.code).toBe(0);
      expect((parseYaml(falco.stdout) as unknown[]).length).toBe(5);
      const tetragon = await runCt(['profile', 'monitor-export', join(dir, 'ok.yaml'), '--format', 'tetragon']);
      expect(tetragon.code).toBe(0);
      expect(parseYaml(tetragon.stdout)).toMatchObject({ kind: 'TracingPolicy' });
      await writeFile(join(dir, 'bad.yaml'), RULES.replace('/bin/sh,', '"/bin/sh\\" }",'));
      const bad = await runCt(['profile', 'monitor-export', join(dir, 'bad.yaml'), '--format', 'falco']);
      expect(bad.code).toBe(10);
      expect(bad.stderr).toContain('MONITOR_RULES_INVALID');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('monitor on a running container (one bpftrace for the file)', () => {
  let facts: HostFacts;
  let base: string;
  let rootfs: string;
  let rt: RuncRuntime;
  let monitor: Monitor;
  const events: MonitorEvent[] = [];
  const id = `mon-${process.pid}`;
  const quiet = `monq-${process.pid}`;
  let rules: MonitorRules;

  beforeAll(async () => {
    requireHostTools();
    facts = await collectFacts();
    ({ base, rootfs } = await makeRootfs(['intruder']));
    rt = await RuncRuntime.open({ stateDir: join(base, 'state'), unifiedCgroupMount: facts.cgroup.unifiedMount });
    rules = parseRules(RULES);
    const rd = runtimeDefault({ capabilities: [] });
    const noMkdir = { ...rd, syscalls: rd.syscalls!.map((s) => ({ ...s, names: s.names.filter((n) => n !== 'mkdir' && n !== 'mkdirat') })) };
    const script = [
      'mkdir /tmp/d; echo "mkdir=$?"',
      '/bin/intruder true; echo "intruder=$?"',
      'unshare -n true; echo "unshare=$?"',
      'echo x > /proc/sys/kernel/domainname; echo "procsys=$?"',
    ].join('; ');
    for (const [cid, cmd] of [[id, script], [quiet, 'echo quiet']] as const) {
      const plan = await buildRuntimePlan(
        {
          id: cid, rootfs, app: { name: 'mon', imageDigest: DIGEST }, runtime: { command: ['/bin/sh', '-c', cmd] },
          grants: { seccomp: 'required', monitoring: 'required' }, profiles: { seccomp: noMkdir }, cgroupsPath: `/cerro-torre/${cid}`,
        },
        facts,
      );
      await rt.create(cid, plan.config);
    }
    monitor = await Monitor.start([
      { container: id, cgroupDir: rt.cgroupDir(id)!, rules },
      { container: quiet, cgroupDir: rt.cgroupDir(quiet)!, rules },
    ]);
    monitor.on('event', (e: MonitorEvent) => events.push(e));
    await rt.start(id);
    await rt.wait(id, 20000);
    await rt.start(quiet);
    await rt.wait(quiet, 20000);
  }, 60000);

  afterAll(async () => {
    await monitor?.stop();
    for (const c of rt?.store.list() ?? []) await rt.delete(c.id, { force: true }).catch(() => {});
    rt?.close();
    if (base) await rm(base, { recursive: true, force: true });
  });

  it('the denied mkdir fails with EPERM inside the container and the monitor reports it', async () => {
    const out = await rt.logs(id);
    expect(out).toContain('Operation not permitted');
    expect(out).toContain('mkdir=1');
    const ev = await monitor.waitFor((e) => e.kind === 'denied-syscalls' && e.syscall === 'mkdir', 5000);
    expect(ev).toMatchObject({ container: id, rule: 'seccomp-denials', detail: { errno: 1 } });
    expect(ev.pid).toBeGreaterThan(1);
    expect(typeof ev.comm).toBe('string');
    expect(Date.parse(ev.time)).not.toBeNaN();
  });

  it('reports the exec of a binary outside the allow list, and not the allowed ones', async () => {
    const ev = await monitor.waitFor((e) => e.kind === 'exec' && e.container === id, 5000);
    expect(ev).toMatchObject({ rule: 'unexpected-exec', severity: 'critical', syscall: 'execve', detail: { path: '/bin/intruder' } });
    expect(events.filter((e) => e.kind === 'exec').map((e) => e.detail.path)).toEqual(['/bin/intruder']);
  });

  it('reports unshare (refused by RuntimeDefault without CAP_SYS_ADMIN) but not runc setting up namespaces', async () => {
    const ev = await monitor.waitFor((e) => e.kind === 'namespace-escape', 5000);
    expect(ev).toMatchObject({ container: id, syscall: 'unshare', detail: { succeeded: false } });
    expect(events.filter((e) => e.kind === 'namespace-escape').every((e) => !e.comm.startsWith('runc'))).toBe(true);
    expect(await rt.logs(id)).toMatch(/unshare=[1-9]/);
  });

  it('reports an open for writing under /proc/sys', async () => {
    const ev = await monitor.waitFor((e) => e.kind === 'proc-sys-write', 5000);
    expect(ev).toMatchObject({ container: id, detail: { path: '/proc/sys/kernel/domainname' } });
  });

  it('streams the same events through the async iterator, which ends when the monitor stops', async () => {
    await monitor.stop();
    const streamed: MonitorEvent[] = [];
    for await (const e of monitor) streamed.push(e);
    expect(streamed).toEqual(events);
    expect(monitor.dropped).toBe(0);
  });

  it('keeps containers apart: the quiet container caused no events', async () => {
    expect(await rt.logs(quiet)).toBe('quiet\n');
    expect(events.filter((e) => e.container === quiet)).toEqual([]);
    expect(events.every((e) => e.container === id)).toBe(true);
  });
});

describe('monitor attached to containers already running (an agent that started after them)', () => {
  let base: string;
  let rt: RuncRuntime;
  let monitor: Monitor | undefined;
  const [marked, unmarked] = [`mona-${process.pid}`, `monb-${process.pid}`];

  afterAll(async () => {
    await monitor?.stop();
    for (const c of rt?.store.list() ?? []) await rt.delete(c.id, { force: true }).catch(() => {});
    rt?.close();
    if (base) await rm(base, { recursive: true, force: true });
  });

  it('reports what the app does from the attach on when told it runs; without that, the exec rules wait for a start never seen', async () => {
    requireHostTools();
    const facts = await collectFacts();
    let rootfs: string;
    ({ base, rootfs } = await makeRootfs(['intruder']));
    rt = await RuncRuntime.open({ stateDir: join(base, 'state'), unifiedCgroupMount: facts.cgroup.unifiedMount });
    const rules = parseRules(RULES);
    for (const cid of [marked, unmarked]) {
      const plan = await buildRuntimePlan(
        {
          id: cid, rootfs, app: { name: 'mon', imageDigest: DIGEST }, runtime: { command: ['/bin/sh', '-c', 'while true; do /bin/intruder true; sleep 0.2; done'] },
          grants: { seccomp: 'required' }, cgroupsPath: `/cerro-torre/${cid}`,
        },
        facts,
      );
      await rt.create(cid, plan.config);
      expect((await rt.start(cid)).status).toBe('running');
    }
    monitor = await Monitor.start([
      { container: marked, cgroupDir: rt.cgroupDir(marked)!, rules, running: true },
      { container: unmarked, cgroupDir: rt.cgroupDir(unmarked)!, rules },
    ]);
    const ev = await monitor.waitFor((e) => e.kind === 'exec' && e.container === marked, 10_000);
    expect(ev).toMatchObject({ rule: 'unexpected-exec', detail: { path: '/bin/intruder' } });
    // The other one ran the same loop meanwhile (five times a second) and was never reported.
    await new Promise((r) => setTimeout(r, 1500));
    expect(monitor.buffered().filter((e) => e.container === unmarked)).toEqual([]);
    expect(monitor.buffered().filter((e) => e.container === marked).length).toBeGreaterThan(2);
  }, 60_000);
});
