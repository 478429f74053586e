/**
 * A side-by-side replace (host/lifecycle/side-by-side.ts) cut short by `kill -9` of the agent, with
 * real runc containers and netavark: the agent process is killed while it drains the old container
 * (the published port has just moved to the new one, the old one still runs). The restarted agent
 * (recoverSideBySide, then the network's recover) ends with exactly one container serving the
 * app's port, the old one (it never stopped), and no netns, veth or firewall rule of the discarded
 * new one left; after the last container goes, nothing at all. When the old container died too
 * while no agent ran, the new one takes the app over instead: the port stays on it, the old
 * container's netns, veth and rule go.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findNetavark } from '../../host/network/index.js';
import { recoverSideBySide } from '../../host/lifecycle/side-by-side.js';
import { freePort } from '../support/registry.js';
import { repoRoot } from '../support/cli.js';
import { makeRootfs, requireHostTools, runUntilMarker } from '../host/support.js';
import { listArtifacts } from './artifacts.js';
import { killWithRunc, makeVersions, openAgent, recoverNetwork, removeAll, runcListed, served, writeSideBySideAgent } from './side-by-side-agent.js';
import { claimSubnetBase } from '../support/subnets.js';

const pid = process.pid;
const NET = { subnetBase: claimSubnetBase(), bridgePrefix: `cts${pid % 100000}k` };
const scope = { netnsPrefix: `ctsbs-${pid}`, ...NET };

describe('side-by-side replace: kill -9 of the agent mid-swap', () => {
  let dir: string;
  let base: string;

  beforeAll(async () => {
    requireHostTools();
    await findNetavark();
    dir = mkdtempSync(join(tmpdir(), 'ct-sbs-crash-'));
    ({ base } = await makeRootfs());
  });

  // Every agent state made here: whatever a failing test left running is removed before the files go.
  const states: string[] = [];
  afterAll(async () => {
    for (const stateDir of states) await removeAll(await openAgent(stateDir, NET));
    rmSync(dir, { recursive: true, force: true });
    rmSync(base, { recursive: true, force: true });
  });

  /**
   * Runs the agent until it drains the old container (the port on the new one, both running) and
   * kills it with -9 there. Returns what the restarted agent needs.
   */
  async function killMidSwap(APP_ID: string): Promise<{ stateDir: string; port: number; marker: string }> {
    const stateDir = join(dir, `state-${APP_ID}`);
    states.push(stateDir);
    const port = await freePort();
    const marker = join(dir, `draining-${APP_ID}`);
    makeVersions(dir, base);
    // The agent: v1 running with the port, then v2 beside it, healthy, the port moved; it is
    // killed while it drains v1 (drainMs is long here so that the moment can be caught).
    const script = join(dir, 'agent.mjs');
    writeSideBySideAgent(script, { dir, stateDir, net: NET, appId: APP_ID, port, environment: 'crash', then: `
writeFileSync(${JSON.stringify(`${marker}.v1`)}, 'up');
await replace({ healthcheck: { type: 'http', port: 8080, path: '/', interval: 0.2, timeout: 1, retries: 10, start_period: 0 }, drainMs: 120000, maxDrainMs: 120000, graceMs: 1000,
  onSwitched: () => writeFileSync(${JSON.stringify(marker)}, 'switched') });
` });
    execFileSync(process.execPath, [join(repoRoot, 'scripts/build.mjs')], { cwd: repoRoot });
    const agent = await runUntilMarker(script, marker);
    try {
      expect([existsSync(marker), agent.stderr]).toEqual([true, '']);
      // Mid-swap: the port answers from the new container, both run, each in its own netns.
      expect(await served(port)).toBe('v2');
      expect(listArtifacts(scope).netns).toEqual([APP_ID, `${APP_ID}.x`]);
    } finally {
      await agent.kill();
    }
    return { stateDir, port, marker };
  }

  it('ends with the old container serving alone and nothing of the new one left', async () => {
    const APP_ID = `ctsbs-${pid}`;
    const { stateDir, port, marker } = await killMidSwap(APP_ID);

    // The restarted agent.
    const restarted = await openAgent(stateDir, NET);
    const { rt, net } = restarted;
    try {
      await rt.recover();
      expect(await recoverSideBySide(rt, net)).toEqual([`${APP_ID}.x: discarded, ${APP_ID} keeps serving`]);
      await recoverNetwork(restarted);
      // Exactly one container, the old one, serving the port; nothing of the new one left.
      expect((await rt.list()).map((c) => [c.id, c.status, c.replaces])).toEqual([[APP_ID, 'running', null]]);
      expect(await served(port)).toBe('v1');
      const a = listArtifacts(scope);
      expect([a.netns, a.veths.length]).toEqual([[APP_ID], 1]);
      const dnat = a.rules.filter((r) => r.includes('--to-destination'));
      expect(dnat).toEqual([expect.stringContaining(`--to-destination ${net.attachment(APP_ID)!.address}:8080`)]);
      expect(existsSync(join(stateDir, 'containers', `${APP_ID}.x`))).toBe(false);
      // A second recovery has nothing to do.
      expect(await recoverSideBySide(rt, net)).toEqual([]);
    } finally {
      await removeAll(restarted);
    }
    expect(listArtifacts(scope)).toEqual({ netns: [], bridges: [], veths: [], rules: [] });
    expect(readFileSync(`${marker}.v1`, 'utf8')).toBe('up');
  }, 120_000);

  it('hands the app to the new container when the old one had stopped while the agent was down', async () => {
    const APP_ID = `ctsbs-${pid}b`;
    const { stateDir, port } = await killMidSwap(APP_ID);
    // While no agent runs, the old container dies (its app crashed, an operator killed it).
    await killWithRunc(stateDir, APP_ID);
    expect(runcListed(stateDir)).toEqual([`${APP_ID}.x`]);

    const restarted = await openAgent(stateDir, NET);
    const { rt, net } = restarted;
    try {
      await rt.recover();
      expect(await recoverSideBySide(rt, net)).toEqual([`${APP_ID}.x: took over ${APP_ID}`]);
      await recoverNetwork(restarted);
      // One container under the app's id, the new one (runc knows it as .x), serving the port.
      expect((await rt.list()).map((c) => [c.id, c.runcId, c.status, c.replaces])).toEqual([[APP_ID, `${APP_ID}.x`, 'running', null]]);
      expect(await served(port)).toBe('v2');
      // Nothing of the old one left: its netns, veth and rule went with it.
      const a = listArtifacts({ ...scope, netnsPrefix: APP_ID });
      expect([a.netns, a.veths.length]).toEqual([[`${APP_ID}.x`], 1]);
      expect(a.rules.filter((r) => r.includes('--to-destination'))).toEqual([expect.stringContaining(`--to-destination ${net.attachment(`${APP_ID}.x`)!.address}:8080`)]);
      expect(runcListed(stateDir)).toEqual([`${APP_ID}.x`]);
      expect(await recoverSideBySide(rt, net)).toEqual([]);
    } finally {
      await removeAll(restarted);
    }
    expect(listArtifacts({ ...scope, netnsPrefix: APP_ID })).toEqual({ netns: [], bridges: [], veths: [], rules: [] });
  }, 120_000);
});
