/**
 * A start whose firewall write fails (manager.ts setup()) while its anti-spoofing guard is still
 * being written: the start fails, and the teardown after it waits for that write, so no chain of
 * the state directory is left behind (found by a review: only a conntrack or IPv6 failure waited).
 * The agent runs in a process of its own, with a PATH whose iptables-restore fails and whose
 * ebtables-restore is slow.
 */
import { afterAll, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stateScope } from '../../host/runtime/scope.js';
import { repoRoot } from '../support/cli.js';
import { claimSubnetBase } from '../support/subnets.js';
import { listArtifacts, removeGuardChains } from './artifacts.js';

const pid = process.pid;
const BASE = claimSubnetBase();
const PREFIX = `ctf${pid % 100000}f`;
const scope = { netnsPrefix: `ctf-${pid}-`, bridgePrefix: PREFIX, subnetBase: BASE };
const stateDir = mkdtempSync(join(tmpdir(), 'ct-fwfail-state-'));

afterAll(() => {
  removeGuardChains(stateScope(stateDir));
  rmSync(stateDir, { recursive: true, force: true });
  expect(listArtifacts(scope)).toEqual({ netns: [], bridges: [], veths: [], rules: [] });
});

it('a start whose firewall write fails leaves no guard chain behind', async () => {
  const bin = mkdtempSync(join(tmpdir(), 'ct-fwfail-path-'));
  let said: string;
  try {
    for (const f of readdirSync('/usr/sbin')) if (f !== 'iptables-restore' && f !== 'ebtables-restore') symlinkSync(join('/usr/sbin', f), join(bin, f));
    writeFileSync(join(bin, 'ebtables-restore'), '#!/bin/sh\nsleep 1\nexec /usr/sbin/ebtables-restore "$@"\n', { mode: 0o755 });
    writeFileSync(join(bin, 'iptables-restore'), '#!/bin/sh\necho simulated failure >&2\nexit 1\n', { mode: 0o755 });
    // The agent waits past the slow restore before it exits: a write still pending would land then.
    const agent = `import { NetworkManager } from ${JSON.stringify(join(repoRoot, 'build/host/network/index.js'))};
      const net = new NetworkManager({ stateDir: ${JSON.stringify(stateDir)}, subnetBase: '${BASE}', bridgePrefix: '${PREFIX}', slots: 2 });
      const code = await net.attach({ containerId: 'ctf-${pid}-a', environment: 'e', app: 'a', egress: 'any', ports: [] }).then(() => 'attached', (e) => e.code);
      await new Promise((r) => setTimeout(r, 2500));
      net.close();
      console.log(code);`;
    said = execFileSync(process.execPath, ['--input-type=module', '-e', agent], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:/usr/bin:/bin` } }).trim();
  } finally {
    rmSync(bin, { recursive: true, force: true });
  }
  expect(said).toBe('NETWORK_SETUP_FAILED');
  expect(execFileSync('ebtables-save', { encoding: 'utf8' }).split('\n').filter((l) => l.includes(`ct-as-${stateScope(stateDir)}-`))).toEqual([]);
}, 60_000);
