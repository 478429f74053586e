import { syscallName } from '../../src/profiles/seccomp/index.js';
import type { CompiledRule } from './compile.js';
import type { RuleKind, Severity } from './rules.js';

/** One alert, as the agent streams it to the server. */
export interface MonitorEvent {
  kind: RuleKind;
  rule: string;
  severity: Severity;
  container: string;
  pid: number;
  tid: number;
  comm: string;
  syscall: string;
  detail: Record<string, string | number | boolean>;
  /** When the host read the event (ISO 8601). */
  time: string;
}

const int = (v: unknown): number | undefined => (typeof v === 'number' && Number.isInteger(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/**
 * A `print((rule, pid, tid, comm, …))` tuple → event. Layouts (compile.ts):
 *   exec:             [rule, pid, tid, comm, path]
 *   denied-syscalls:  [rule, pid, tid, comm, nr, ret]
 *   module-load, namespace-escape: [rule, pid, tid, comm, syscall, ret]
 *   proc-sys-write:   [rule, pid, tid, comm, syscall, path, flags]
 * Anything that does not fit is dropped (it did not come from our program).
 */
export function toEvent(data: unknown[], rules: ReadonlyMap<number, CompiledRule>): MonitorEvent | undefined {
  const r = rules.get(int(data[0]) ?? -1);
  const pid = int(data[1]);
  const tid = int(data[2]);
  const comm = str(data[3]);
  if (!r || pid === undefined || tid === undefined || comm === undefined) return undefined;
  const base = { kind: r.rule.kind, rule: r.rule.name, severity: r.rule.severity, container: r.container, pid, tid, comm, time: new Date().toISOString() };
  switch (r.rule.kind) {
    case 'exec': {
      const path = str(data[4]);
      return path === undefined ? undefined : { ...base, syscall: 'execve', detail: { path } };
    }
    case 'denied-syscalls': {
      const nr = int(data[4]);
      const ret = int(data[5]);
      if (nr === undefined || ret === undefined) return undefined;
      return { ...base, syscall: syscallName(nr) ?? `syscall_${nr}`, detail: { nr, errno: -ret } };
    }
    case 'module-load':
    case 'namespace-escape': {
      const syscall = str(data[4]);
      const ret = int(data[5]);
      if (syscall === undefined || ret === undefined) return undefined;
      return { ...base, syscall, detail: { ret, succeeded: ret >= 0 } };
    }
    case 'proc-sys-write': {
      const syscall = str(data[4]);
      const path = str(data[5]);
      const flags = int(data[6]);
      if (syscall === undefined || path === undefined || flags === undefined) return undefined;
      return { ...base, syscall, detail: { path, flags } };
    }
  }
}
