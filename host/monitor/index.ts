/** eBPF monitoring: closed YAML rules → bpftrace on tracepoints, filtered by cgroup → events. */
export { parseRules, checkRules, MAX_PATH, type MonitorRules, type MonitorRule, type RuleKind, type Severity } from './rules.js';
export { compileRules, bpftraceString, type MonitorTarget, type CompiledProgram } from './compile.js';
export { Monitor, ensureTracingMounts, type MonitorOptions } from './monitor.js';
export type { MonitorEvent } from './events.js';
export { toFalcoRules } from './export-falco.js';
export { toTetragonPolicy } from './export-tetragon.js';
