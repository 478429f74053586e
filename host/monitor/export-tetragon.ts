import { stringify } from 'yaml';
import { SYSCALLS_X86_64 } from '../../src/profiles/seccomp/syscalls-x86_64.js';
import type { MonitorRule, MonitorRules } from './rules.js';

type Selector = Record<string, unknown>;
interface Hook {
  call?: string;
  syscall?: boolean;
  subsystem?: string;
  event?: string;
  args?: { index: number; type: string }[];
  selectors?: Selector[];
}

const NUMBERS = new Map([...SYSCALLS_X86_64].map(([nr, name]) => [name, nr]));
const post = { matchActions: [{ action: 'Post' }] };

function hooks(rule: MonitorRule): { kprobes?: Hook[]; tracepoints?: Hook[] } {
  switch (rule.kind) {
    case 'exec':
      return {
        kprobes: [{
          call: 'security_bprm_check', syscall: false, args: [{ index: 0, type: 'linux_binprm' }],
          selectors: [{ matchArgs: [{ index: 0, operator: 'NotEqual', values: rule.allow ?? [] }], ...post }],
        }],
      };
    case 'denied-syscalls': {
      // raw_syscalls/sys_exit fields: 4 common fields, then id (4) and ret (5).
      const matchArgs: Selector[] = [{ index: 5, operator: 'Equal', values: ['-1', '-13'] }];
      if (rule.syscalls) matchArgs.push({ index: 4, operator: 'Equal', values: rule.syscalls.map((s) => String(NUMBERS.get(s))) });
      return {
        tracepoints: [{
          subsystem: 'raw_syscalls', event: 'sys_exit', args: [{ index: 4, type: 'int64' }, { index: 5, type: 'int64' }],
          selectors: [{ matchArgs, ...post }],
        }],
      };
    }
    case 'module-load':
      return { kprobes: ['sys_init_module', 'sys_finit_module'].map((call) => ({ call, syscall: true, selectors: [post] })) };
    case 'namespace-escape':
      return {
        kprobes: [
          { call: 'sys_unshare', syscall: true, args: [{ index: 0, type: 'int' }], selectors: [post] },
          { call: 'sys_setns', syscall: true, args: [{ index: 0, type: 'int' }, { index: 1, type: 'int' }], selectors: [post] },
        ],
      };
    case 'proc-sys-write':
      return {
        kprobes: [{
          call: 'security_file_permission', syscall: false, args: [{ index: 0, type: 'file' }, { index: 1, type: 'int' }],
          // MAY_WRITE = 2
          selectors: [{ matchArgs: [{ index: 0, operator: 'Prefix', values: ['/proc/sys/'] }, { index: 1, operator: 'Equal', values: ['2'] }], ...post }],
        }],
      };
  }
}

/**
 * The same rules as one Tetragon TracingPolicy (cilium.io/v1alpha1). Scoped to the container's
 * pods by the label `cerro-torre.dev/container` when a container is given.
 */
export function toTetragonPolicy(rules: MonitorRules, opts: { container?: string } = {}): string {
  const kprobes: Hook[] = [];
  const tracepoints: Hook[] = [];
  for (const r of rules.rules) {
    const h = hooks(r);
    kprobes.push(...(h.kprobes ?? []));
    tracepoints.push(...(h.tracepoints ?? []));
  }
  const name = `cerro-torre-${(opts.container ?? 'monitor').toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 50)}`;
  const spec: Record<string, unknown> = {};
  if (opts.container) spec.podSelector = { matchLabels: { 'cerro-torre.dev/container': opts.container.replace(/[^A-Za-z0-9_.-]/g, '') } };
  if (kprobes.length) spec.kprobes = kprobes;
  if (tracepoints.length) spec.tracepoints = tracepoints;
  return stringify({ apiVersion: 'cilium.io/v1alpha1', kind: 'TracingPolicy', metadata: { name }, spec }, { lineWidth: 0 });
}
