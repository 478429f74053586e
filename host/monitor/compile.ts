import { CtError } from '../../src/core/errors.js';
import { SYSCALLS_X86_64 } from '../../src/profiles/seccomp/syscalls-x86_64.js';
import { MAX_PATH, type MonitorRule, type MonitorRules, type RuleKind } from './rules.js';

/** One container to watch: its name in events, the directory of its cgroup (v2), its rules. */
export interface MonitorTarget {
  container: string;
  cgroupDir: string;
  rules: MonitorRules;
  /**
   * Already running its app (an agent that started after it): the cgroup is live from the start.
   * Otherwise it becomes live when runc's init execs the app, which an attach afterwards never sees.
   */
  running?: boolean;
}

/** Which rule (and container) an event's first tuple element refers to. */
export interface CompiledRule {
  index: number;
  container: string;
  rule: MonitorRule;
}

export interface CompiledProgram {
  text: string;
  rules: CompiledRule[];
}

const CGROUP_DIR_RE = /^\/sys\/fs\/cgroup(?:\/[A-Za-z0-9._-]+)+$/;
const CONTAINER_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/**
 * A bpftrace string literal. Values reaching here were already checked against strict patterns
 * (rules.ts); this is the second wall: anything but plain printable ASCII is refused, and quote
 * and backslash are escaped, so a value can never end the literal.
 */
export function bpftraceString(s: string): string {
  if (!/^[\x20-\x7e]*$/.test(s)) throw new CtError('MONITOR_RULES_INVALID', `value ${JSON.stringify(s)} has characters bpftrace strings cannot hold`, {});
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

const GATE = 'if (@live[cgroup] == 0 && @init[tid] == 1) { @live[cgroup] = 1; }';
const NUMBERS = new Map([...SYSCALLS_X86_64].map(([nr, name]) => [name, nr]));

/**
 * Compiles rules to one bpftrace program. Every probe is filtered by the container's cgroup id;
 * every event is printed as a tuple (`print((rule, pid, tid, comm, …))`), which `bpftrace -f json`
 * emits as a JSON array with strings escaped, so container-chosen strings (comm, file names)
 * cannot forge or split events. Tuple layout per kind is in parse.ts.
 *
 * Denied syscalls (SPEC §8): seccomp runs before the sys_enter tracepoint, so a denied syscall
 * never shows there but does show at sys_exit. The program marks each thread at raw sys_enter and
 * reports a sys_exit with a negative return that had no sys_enter: that is a syscall seccomp
 * refused (ERRNO actions), whatever errno the profile returns.
 */
export function compileRules(targets: readonly MonitorTarget[]): CompiledProgram {
  const blocks: string[] = [];
  const begin: string[] = [];
  const rules: CompiledRule[] = [];
  let index = 0;
  let denial = false;
  for (const t of targets) {
    if (!CONTAINER_RE.test(t.container)) throw new CtError('MONITOR_RULES_INVALID', `container name ${JSON.stringify(t.container)} is not a container id`, {});
    if (!CGROUP_DIR_RE.test(t.cgroupDir)) throw new CtError('MONITOR_RULES_INVALID', `cgroup ${JSON.stringify(t.cgroupDir)} is not a directory under /sys/fs/cgroup`, {});
    const cg = `cgroup == cgroupid(${bpftraceString(t.cgroupDir)})`;
    if (t.running) begin.push(`@live[cgroupid(${bpftraceString(t.cgroupDir)})] = 1;`);
    const live = `${cg} && @live[cgroup] == 1`;
    // The container is "live" once runc's init (comm "runc:[2:INIT]") has exec'd the app: before
    // that, only runc runs in the cgroup, re-executing itself (as /proc/self/exe or a memfd copy,
    // /dev/fd/N) and setting up the very namespaces (unshare, setns) the rules would report.
    blocks.push(`tracepoint:syscalls:sys_enter_execve /${cg} && @live[cgroup] == 0 && comm == "runc:[2:INIT]"/ { @init[tid] = 1; }`);
    blocks.push(`tracepoint:sched:sched_process_exec /${cg}/ { ${GATE} delete(@init[tid]); }`);
    for (const rule of t.rules.rules) {
      index++;
      rules.push({ index, container: t.container, rule });
      blocks.push(...compileRule(index, rule, rule.kind === 'denied-syscalls' || rule.kind === 'exec' ? cg : live));
      if (rule.kind === 'exec') {
        for (const p of rule.allow ?? []) if (p.length <= MAX_PATH) begin.push(`@allow_${index}[${bpftraceString(p)}] = 1;`);
      }
      if (rule.kind === 'denied-syscalls') denial = true;
    }
  }
  const clears = ['@live', '@init', ...(denial ? ['@entered'] : []), ...rules.filter((r) => r.rule.kind === 'exec').map((r) => `@allow_${r.index}`)];
  blocks.push(`END { ${clears.map((m) => `clear(${m});`).join(' ')} }`);
  // BEGIN runs once the probes are attached: the monitor waits for its READY tuple (rule 0), so
  // the allow maps are filled before the container starts.
  const head = `BEGIN { ${[...begin, 'print((0, 0, 0, "ready"));'].join(' ')} }`;
  return { text: `${[head, ...blocks].join('\n')}\n`, rules };
}

function compileRule(i: number, rule: MonitorRule, cg: string): string[] {
  const kind: RuleKind = rule.kind;
  switch (kind) {
    case 'exec':
      // The allow list is a map filled in BEGIN (see compileRules): one lookup, whatever its
      // length; a chain of string comparisons overflows the 512-byte BPF stack after a few paths.
      // str() is read inline twice on purpose: bpftrace 0.17 corrupts a string variable ($f) used
      // as a map key before being printed (measured: "/bin/busybox" came out as "7u").
      // The live gate is repeated here so that the result does not depend on the order in which
      // the kernel runs the programs attached to one tracepoint: runc's own re-exec is never reported.
      return [`tracepoint:sched:sched_process_exec /${cg}/ { ${GATE} if (@live[cgroup] == 1 && @allow_${i}[str(args->filename)] == 0) { print((${i}, pid, tid, comm, str(args->filename))); } }`];
    case 'denied-syscalls': {
      const only = (rule.syscalls ?? []).map((n) => NUMBERS.get(n)).filter((n): n is number => n !== undefined);
      const sel = only.length > 0 ? ` && (${only.map((n) => `args->id == ${n}`).join(' || ')})` : '';
      return [
        `tracepoint:raw_syscalls:sys_enter /${cg}/ { @entered[tid] = 1; }`,
        `tracepoint:raw_syscalls:sys_exit /${cg}/ { if (@entered[tid] == 0 && args->ret < 0${sel}) { print((${i}, pid, tid, comm, args->id, args->ret)); } delete(@entered[tid]); }`,
      ];
    }
    case 'module-load': {
      // raw sys_exit by number rather than syscalls:sys_exit_init_module: kernels built without
      // module support (this machine's) have no such tracepoint, and the attempt is still worth an
      // alert. sys_exit also fires for attempts seccomp refused (see above); the return says which.
      const [init, finit] = [NUMBERS.get('init_module'), NUMBERS.get('finit_module')];
      return [
        `tracepoint:raw_syscalls:sys_exit /${cg} && (args->id == ${init} || args->id == ${finit})/ { print((${i}, pid, tid, comm, args->id == ${init} ? "init_module" : "finit_module", args->ret)); }`,
      ];
    }
    case 'namespace-escape':
      return ['unshare', 'setns'].map(
        (s) => `tracepoint:syscalls:sys_exit_${s} /${cg}/ { print((${i}, pid, tid, comm, ${bpftraceString(s)}, args->ret)); }`,
      );
    case 'proc-sys-write':
      // O_WRONLY (1) or O_RDWR (2) in the low bits; absolute paths only (see docs/monitor-rules.md).
      return ['open', 'openat'].map(
        (s) =>
          `tracepoint:syscalls:sys_enter_${s} /${cg} && (args->flags & 3) != 0/ { $p = str(args->filename); if (strncmp($p, "/proc/sys/", 10) == 0) { print((${i}, pid, tid, comm, ${bpftraceString(s)}, $p, args->flags)); } }`,
      );
  }
}
