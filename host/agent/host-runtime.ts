import type { HostFacts } from '../../src/protocol/messages.js';
import { ContainerMonitors } from '../monitor/containers.js';
import type { NetworkManager } from '../network/index.js';
import { RuncRuntime } from '../runtime/runc.js';
import type { LogLimits } from '../runtime/supervisor.js';
import { HostAlerts } from './alerts.js';

export interface AgentRuntime {
  runtime: RuncRuntime;
  monitors: ContainerMonitors;
  alerts: HostAlerts;
}

/**
 * The runtime as a host agent runs it (`ct host run`, and the tests' agents): before every start
 * of a container, its suspended network is set up again and its eBPF monitor started on its new
 * cgroup; the monitor's events become alerts for the server (HostAlerts, attached once the agent
 * exists). One place, so that what a test's agent enforces is what a host's does.
 */
export async function openAgentRuntime(o: {
  stateDir: string; facts: HostFacts; network?: NetworkManager; logLimits?: LogLimits; log: (line: string) => void;
}): Promise<AgentRuntime> {
  const alerts = new HostAlerts();
  const hooks: { monitors?: ContainerMonitors } = {};
  const runtime = await RuncRuntime.open({
    stateDir: o.stateDir, unifiedCgroupMount: o.facts.cgroup.unifiedMount, logLimits: o.logLimits,
    beforeStart: async (id) => {
      // The monitor first: a start it refuses sets up no network.
      await hooks.monitors?.beforeStart(id);
      await o.network?.resume(id);
    },
  });
  const monitors = hooks.monitors = new ContainerMonitors({
    runtime, canTrace: o.facts.ebpf.usable,
    onEvent: (container, ev) => alerts.monitor(container, ev),
    // Said on the deployment's Evidence page too (the alert names the container).
    log: (line, container) => {
      o.log(line);
      alerts.note('host.monitor', line, container ? { container } : {});
    },
  });
  return { runtime, monitors, alerts };
}
