import { CtError } from '../../src/core/errors.js';
import type { CtpArchive } from '../../src/bundle/archive.js';
import type { HostFacts } from '../../src/protocol/messages.js';
import type { RuntimeGrants } from '../enforce/types.js';
import { Monitor, parseRules } from '../monitor/index.js';
import type { RuncRuntime } from '../runtime/runc.js';

const RULES = 'security/monitor.yaml';

/**
 * The bundle's monitoring rules (security/monitor.yaml) watched with bpftrace for `ct run`, started
 * once the container's cgroup exists and before the app starts. Required by a policy: a host that
 * cannot trace was refused before (HOST_CANNOT_ENFORCE) and a failing start fails the run. Not
 * required: it runs where the host can trace, and is reported as skipped where it cannot.
 */
export async function startBundleMonitor(
  archive: CtpArchive, id: string, runtime: RuncRuntime, grants: RuntimeGrants, facts: HostFacts, io: { err(t: string): void },
): Promise<Monitor | undefined> {
  if (!archive.has(RULES)) return undefined;
  const cgroupDir = runtime.cgroupDir(id);
  if (!facts.ebpf.usable || !cgroupDir) {
    if (grants.monitoring === 'required') throw new CtError('HOST_CANNOT_ENFORCE', 'monitoring required but this host cannot trace', {});
    io.err(`monitor: not started (${!cgroupDir ? 'no cgroup v2 hierarchy' : 'bpftrace or tracefs unavailable'}); the bundle's rules are not watched`);
    return undefined;
  }
  const rules = parseRules(archive.file(RULES).toString('utf8'));
  try {
    const m = await Monitor.start([{ container: id, cgroupDir, rules }]);
    m.on('event', (e: { rule: string; severity: string; comm: string; syscall: string; detail: Record<string, unknown> }) =>
      io.err(`monitor: ${e.severity} ${e.rule}: ${e.comm} ${e.syscall} ${JSON.stringify(e.detail)}`));
    return m;
  } catch (e) {
    if (grants.monitoring === 'required') throw e;
    io.err(`monitor: not started (${(e as Error).message.slice(0, 200)})`);
    return undefined;
  }
}
