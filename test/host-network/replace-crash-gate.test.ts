/**
 * A side-by-side replace (host/lifecycle/side-by-side.ts) cut short by `kill -9` of the agent while
 * the new container is being health-checked, with real runc containers and netavark; its check
 * never passes (HTTP 404). While no agent runs, the old container dies too. The restarted agent
 * (recoverSideBySide) must not hand the app to the unproven new container: it checks it again, it
 * fails, it is discarded, and the old container runs and serves the app's port again.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
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
// Ranges no other test of this directory uses (they run in parallel workers).
const NET = { subnetBase: claimSubnetBase(), bridgePrefix: `ctg${pid % 100000}k` };
const APP_ID = `ctgate-${pid}`;
const scope = { netnsPrefix: APP_ID, ...NET };

describe('side-by-side replace: kill -9 of the agent during the new container\'s health check', () => {
  let dir: string;
  let base: string;
  let stateDir: string;

  beforeAll(async () => {
    requireHostTools();
    await findNetavark();
    dir = mkdtempSync(join(tmpdir(), 'ct-sbs-gate-'));
    stateDir = join(dir, 'state');
    ({ base } = await makeRootfs());
  });

  afterAll(async () => {
    if (stateDir && existsSync(stateDir)) await removeAll(await openAgent(stateDir, NET));
    rmSync(dir, { recursive: true, force: true });
    rmSync(base, { recursive: true, force: true });
  });

  it('does not let a new container whose check never passed take the app over; the old one serves again', async () => {
    const port = await freePort();
    const marker = join(dir, 'gating');
    makeVersions(dir, base);
    // The agent: v1 running with the port, then v2 beside it, checked on a path it does not serve
    // (failures do not count for 3 s): it is killed as soon as that check has begun.
    const script = join(dir, 'agent.mjs');
    writeSideBySideAgent(script, { dir, stateDir, net: NET, appId: APP_ID, port, environment: 'gate', then: `
setInterval(() => { if (rt.store.get(candidate)?.health === 'starting') writeFileSync(${JSON.stringify(marker)}, 'gating'); }, 20);
const r = await replace({ healthcheck: { type: 'http', port: 8080, path: '/missing', interval: 0.3, timeout: 1, retries: 3, start_period: 3 }, drainMs: 500, maxDrainMs: 1000, graceMs: 1000 });
process.stderr.write('the replace ended before the agent was killed: ' + r.state);
` });
    execFileSync(process.execPath, [join(repoRoot, 'scripts/build.mjs')], { cwd: repoRoot });
    const killed = await runUntilMarker(script, marker);
    await killed.kill();
    expect([existsSync(marker), killed.stderr]).toEqual([true, '']);
    // Mid-check: both run, the port still on the old one.
    expect(await served(port)).toBe('v1');
    expect(listArtifacts(scope).netns).toEqual([APP_ID, `${APP_ID}.x`]);

    // While no agent runs, the old container dies (its app crashed, an operator killed it).
    await killWithRunc(stateDir, APP_ID);
    expect(runcListed(stateDir)).toEqual([`${APP_ID}.x`]);

    // The restarted agent.
    const restarted = await openAgent(stateDir, NET);
    const { rt, net } = restarted;
    try {
      await rt.recover();
      expect(await recoverSideBySide(rt, net)).toEqual([
        expect.stringMatching(new RegExp(`^${APP_ID}\\.x: HEALTHCHECK_FAILED after the agent restart \\(.+\\); discarded, ${APP_ID} started again \\(running\\)$`)),
      ]);
      await recoverNetwork(restarted);
      // The app is the old container again (its own runc id), serving the port; nothing of the new one is left.
      expect((await rt.list()).map((c) => [c.id, c.runcId, c.status, c.replaces])).toEqual([[APP_ID, APP_ID, 'running', null]]);
      expect(runcListed(stateDir)).toEqual([APP_ID]);
      expect(await served(port)).toBe('v1');
      const a = listArtifacts(scope);
      expect([a.netns, a.veths.length]).toEqual([[APP_ID], 1]);
      expect(a.rules.filter((r) => r.includes('--to-destination'))).toEqual([expect.stringContaining(`--to-destination ${net.attachment(APP_ID)!.address}:8080`)]);
      expect(existsSync(join(stateDir, 'containers', `${APP_ID}.x`))).toBe(false);
      expect(await recoverSideBySide(rt, net)).toEqual([]);
    } finally {
      await removeAll(restarted);
    }
    expect(listArtifacts(scope)).toEqual({ netns: [], bridges: [], veths: [], rules: [] });
  }, 120_000);
});
