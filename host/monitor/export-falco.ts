import { stringify } from 'yaml';
import type { MonitorRule, MonitorRules, Severity } from './rules.js';

const PRIORITY: Record<Severity, string> = { info: 'INFORMATIONAL', warning: 'WARNING', critical: 'CRITICAL' };

/** Falco list syntax: values are already validated (paths and syscall names of plain characters). */
function list(values: readonly string[]): string {
  return `(${values.map((v) => (/^[A-Za-z0-9_]+$/.test(v) ? v : `"${v}"`)).join(', ')})`;
}

function condition(rule: MonitorRule): string {
  switch (rule.kind) {
    case 'exec':
      return `spawned_process and not proc.exepath in ${list(rule.allow ?? [])}`;
    case 'denied-syscalls':
      // Falco sees the exit event of a syscall seccomp refused, with its errno.
      return `evt.dir = < and evt.res in (EPERM, EACCES)${rule.syscalls ? ` and evt.type in ${list(rule.syscalls)}` : ''}`;
    case 'module-load':
      return 'evt.type in (init_module, finit_module) and evt.dir = <';
    case 'namespace-escape':
      return 'evt.type in (unshare, setns) and evt.dir = <';
    case 'proc-sys-write':
      return 'evt.type in (open, openat, openat2) and evt.is_open_write = true and fd.name startswith /proc/sys/';
  }
}

function output(rule: MonitorRule): string {
  const common = 'container=%container.name pid=%proc.pid comm=%proc.name';
  switch (rule.kind) {
    case 'exec':
      return `Unexpected binary executed (${common} exe=%proc.exepath)`;
    case 'denied-syscalls':
      return `Syscall denied by seccomp (${common} syscall=%evt.type res=%evt.res)`;
    case 'module-load':
      return `Kernel module load attempted (${common} syscall=%evt.type res=%evt.res)`;
    case 'namespace-escape':
      return `Namespace change attempted (${common} syscall=%evt.type res=%evt.res)`;
    case 'proc-sys-write':
      return `Write under /proc/sys (${common} file=%fd.name)`;
  }
}

/**
 * The same rules as Falco rules YAML, scoped to one container by name when given (Falco's
 * container.name comes from its container plugin). Names are prefixed `cerro-torre:`.
 */
export function toFalcoRules(rules: MonitorRules, opts: { container?: string } = {}): string {
  const scope = opts.container ? ` and container.name = "${opts.container.replace(/[^A-Za-z0-9_.-]/g, '')}"` : ' and container.id != host';
  const docs = rules.rules.map((r) => ({
    rule: `cerro-torre:${r.name}`,
    desc: `Cerro Torre monitor rule ${r.name} (${r.kind})`,
    condition: `${condition(r)}${scope}`,
    output: output(r),
    priority: PRIORITY[r.severity],
    tags: ['cerro-torre', r.kind],
  }));
  return stringify(docs, { lineWidth: 0 });
}
