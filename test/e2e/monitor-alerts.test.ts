/**
 * A deployed bundle's eBPF monitoring rules (security/monitor.yaml) are enforced by the host agent,
 * not only by `ct run`: through the deploy server and a real agent under runc, with bpftrace,
 * - an exec the rules do not allow becomes an alert the deployment's evidence (the dashboard's
 *   Evidence page) shows, naming the container, the rule and the binary;
 * - a restart gives the container a new cgroup, and the monitor follows it: alerts keep coming;
 * - a host of another environment cannot put alerts on the app's page;
 * - a host cannot fill the server's audit log: alerts beyond its budget are not written.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { RunningServer } from '../../server/start.js';
import { createApiKey } from '../../server/auth/api-keys.js';
import { ALERT_BURST } from '../../server/channel/alert-budget.js';
import { containerIdFor } from '../../src/protocol/container-id.js';
import { collectFacts } from '../../host/facts.js';
import { loopFixture, startLoopServer, startTestHost, until, type LoopFixture, type TestHost } from './fixture.js';

const CONTAINER = containerIdFor('production', 'watched');
const RULES = 'version: 1\nrules:\n  - name: unexpected-exec\n    kind: exec\n    allow: [/bin/busybox, /proc/self/exe]\n    severity: critical\n';
const APP = `name = "watched"
version = "1.0.0"

[[include]]
from = "/bin/busybox"
to = "bin/intruder"

[runtime]
user = "65534:65534"
read_only_rootfs = true
capabilities = []
network = "none"
command = ["/bin/busybox", "sh", "-c", "while true; do /bin/intruder true; /bin/busybox sleep 1; done"]
stop_grace_period = 1
`;

interface Alert { time: string; host: string; event: { kind: string; container?: string; rule?: string; severity?: string; detail: string; time: string } }

describe('eBPF monitoring of deployed containers, alerts to the server', () => {
  let fx: LoopFixture;
  let server: RunningServer;
  let host: TestHost;
  let operator: string;
  let viewer: string;
  let deploymentId: string;

  const alerts = async (): Promise<Alert[]> => {
    const res = await fetch(`${server.url}/api/v1/deployments/${deploymentId}/evidence`, { headers: { authorization: `Bearer ${viewer}` } });
    expect(res.status).toBe(200);
    return ((await res.json()) as { alerts: Alert[] }).alerts;
  };

  beforeAll(async () => {
    // A host that cannot trace would run the app unwatched: that is not what this test is about.
    expect((await collectFacts()).ebpf.usable).toBe(true);
    fx = await loopFixture();
    server = await startLoopServer(fx);
    host = await startTestHost(server.url, (await createApiKey(server.ctx.db, 'admin', 'admin')).key, fx);
    operator = (await createApiKey(server.ctx.db, 'operator', 'operator')).key;
    viewer = (await createApiKey(server.ctx.db, 'viewer', 'viewer')).key;
  }, 120_000);

  afterAll(async () => {
    await host?.stop();
    await server?.close();
    await fx?.cleanup();
  });

  it('an exec the bundle\'s rules do not allow is an alert on the deployment\'s evidence, and stays one after a restart', async () => {
    const sha = fx.commit({ watched: await fx.signedApp('acme/watched', APP, { 'monitor.yaml': RULES }) }, 'watched app');
    expect(await fx.webhook(server.url, sha)).toBe(202);
    const [final] = await until('final status', () => fx.finalStatuses(sha)[0] && fx.finalStatuses(sha), 90_000);
    expect(`${final.body.state} ${final.body.description}`).toMatch(/^success /);
    const deps = (await (await fetch(`${server.url}/api/v1/deployments?environment=production`, { headers: { authorization: `Bearer ${viewer}` } })).json()) as { deployments: { id: string; commit: string }[] };
    deploymentId = deps.deployments.find((d) => d.commit === sha)!.id;
    expect(host.monitors.watched()).toEqual([CONTAINER]);

    const first = await until('an alert for the intruder', async () => (await alerts()).find((a) => a.event.detail.includes('/bin/intruder')), 30_000);
    expect(first).toMatchObject({ host: host.agent.hostId, event: { kind: 'monitor', container: CONTAINER, rule: 'unexpected-exec', severity: 'critical' } });
    expect(first.event.detail).toMatch(/^critical unexpected-exec: .*"path":"\/bin\/intruder"/);
    // What busybox itself runs is allowed: no alert names it.
    expect((await alerts()).some((a) => /"path":"\/bin\/busybox"/.test(a.event.detail))).toBe(false);

    // A restart makes a new cgroup: the monitor of the old one is replaced by one on the new one.
    const pidBefore = (await host.runtime.state(CONTAINER)).pid;
    const res = await fetch(`${server.url}/api/v1/deployments/${deploymentId}/actions`, { method: 'POST', headers: { authorization: `Bearer ${operator}`, 'content-type': 'application/json' }, body: JSON.stringify({ action: 'restart' }) });
    expect(res.status).toBe(200);
    // The old container (and its monitor) are gone once the restart has answered.
    const restarted = Date.now();
    expect((await host.runtime.state(CONTAINER)).pid).not.toBe(pidBefore);
    await until('an alert after the restart', async () => (await alerts()).find((a) => Date.parse(a.event.time) > restarted && a.event.detail.includes('/bin/intruder')), 30_000);
    expect(host.monitors.watched()).toEqual([CONTAINER]);

    // Stopped: its monitor goes with it at the agent's next pass.
    const stop = await fetch(`${server.url}/api/v1/deployments/${deploymentId}/actions`, { method: 'POST', headers: { authorization: `Bearer ${operator}`, 'content-type': 'application/json' }, body: JSON.stringify({ action: 'stop' }) });
    expect(stop.status).toBe(200);
    await host.monitors.sweep();
    expect(host.monitors.watched()).toEqual([]);
  }, 180_000);

  it('a host of another environment cannot put alerts on this app\'s page', async () => {
    const other = await startTestHost(server.url, (await createApiKey(server.ctx.db, 'admin-2', 'admin')).key, fx, 'host-staging', { environment: 'staging' });
    try {
      other.agent.alert({ kind: 'monitor', container: CONTAINER, rule: 'unexpected-exec', severity: 'critical', detail: 'critical unexpected-exec: forged by a staging host', time: new Date().toISOString() });
      await until('the forged alert in the audit log', async () => Number((await server.ctx.db.query<{ n: number }>(`SELECT COUNT(*) AS n FROM audit WHERE kind = 'host.alert' AND subject = ?`, [other.agent.hostId]))[0].n) > 0, 10_000);
      const shown = await alerts();
      expect(shown.length).toBeGreaterThan(0);
      expect(shown.every((a) => a.host === host.agent.hostId)).toBe(true);
      expect(shown.some((a) => a.event.detail.includes('forged'))).toBe(false);
    } finally {
      await other.stop();
    }
  }, 60_000);

  it('a host that floods alerts fills no audit log: those beyond its budget are not written', async () => {
    const count = async () => Number((await server.ctx.db.query<{ n: number }>(`SELECT COUNT(*) AS n FROM audit WHERE kind = 'host.alert' AND subject = ?`, [host.agent.hostId]))[0].n);
    const before = await count();
    for (let i = 0; i < ALERT_BURST * 3; i++) host.agent.alert({ kind: 'monitor', container: 'ct-flood', detail: `flood ${i}`, time: new Date().toISOString() });
    // Written until the budget is spent (it comes back at 2 a second; the first test's alerts took
    // some of it), then no more.
    let last = -1;
    const written = await until('the alerts written to settle', async () => {
      const n = (await count()) - before;
      const settled = n === last && n > 0;
      last = n;
      if (!settled) await new Promise((r) => setTimeout(r, 300));
      return settled && n;
    }, 20_000);
    expect(written).toBeLessThanOrEqual(ALERT_BURST + 20);
    expect(written).toBeGreaterThanOrEqual(ALERT_BURST / 2);
  }, 30_000);
});
