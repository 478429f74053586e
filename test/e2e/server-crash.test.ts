/**
 * Issue 6 faults: `kill -9` of the server in the middle of deploys, then a restart on the same
 * data directory. Each deploy completes exactly once — asserted on the calls the GitHub stand-in
 * recorded and on the host's container state, not on database rows.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { repoRoot } from '../support/cli.js';
import { freePort } from '../support/registry.js';
import { loopFixture, startTestHost, until, WEBHOOK_SECRET, type LoopFixture, type TestHost } from './fixture.js';
import { containerIdFor } from '../../src/protocol/container-id.js';

const ADMIN = 'ctk_crash-test-admin-key-0123456789abcdef';

describe('server killed with SIGKILL in the middle of deploys', () => {
  let fx: LoopFixture;
  let host: TestHost;
  let child: ChildProcess | undefined;
  let url: string;
  let env: NodeJS.ProcessEnv;

  const start = async () => {
    child = spawn(process.execPath, [join(repoRoot, 'bin', 'ct.js'), 'serve'], { env, stdio: 'ignore' });
    await until('server healthy', async () => (await fetch(`${url}/healthz`).catch(() => undefined))?.ok);
  };

  beforeAll(async () => {
    fx = await loopFixture();
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const config = {
      host: '127.0.0.1', dataDir: join(fx.dir, 'server'), policies: fx.policiesDir, trustStore: fx.trustStorePath,
      registries: { allow: [fx.registry.host], allowedAddresses: ['127.0.0.1'], insecure: [fx.registry.host] },
      github: { apiUrl: fx.github.url, token: 'ghs_servertoken', webhookSecrets: [WEBHOOK_SECRET], allowedAddresses: ['127.0.0.1'] },
      desiredState: { repo: fx.desiredRepo, branch: 'main', path: 'deploy', pollSeconds: 3600, report: { provider: 'github', repository: 'acme/desired' } },
    };
    writeFileSync(join(fx.dir, 'server.yaml'), YAML.stringify(config));
    env = { ...process.env, CT_CONFIG: join(fx.dir, 'server.yaml'), PORT: String(port), CT_ADMIN_API_KEY: ADMIN, LOG_LEVEL: 'silent' };
    await start();
    host = await startTestHost(url, ADMIN, fx);
  }, 120_000);

  afterAll(async () => {
    child?.kill('SIGKILL');
    await host?.stop();
    await fx?.cleanup();
  });

  it('completes each deploy exactly once after a restart', async () => {
    const apps = { app1: await fx.refs.good('acme/app1'), app2: await fx.refs.good('acme/app2'), app3: await fx.refs.good('acme/app3') };
    const sha = fx.commit(apps, 'three apps');
    expect(await fx.webhook(url, sha)).toBe(202);
    // Kill as soon as the first deploy has started reporting: the others are mid-flight.
    await until('a deploy in progress', () => fx.github.requests.some((r) => r.operationId === 'repos/create-commit-status' && r.params.sha === sha));
    child!.kill('SIGKILL');
    await new Promise((r) => child!.once('exit', r));
    await start();

    const finals = await until('three final statuses', () => {
      const f = fx.finalStatuses(sha);
      return new Set(f.map((s) => String(s.body.description).split(':')[0])).size === 3 && f;
    }, 90_000);
    // Give a duplicate, if there were one, the chance to arrive before counting.
    await new Promise((r) => setTimeout(r, 1500));
    const all = fx.finalStatuses(sha);
    for (const app of Object.keys(apps)) {
      const mine = all.filter((s) => String(s.body.description).startsWith(`${app}:`));
      expect(mine.map((s) => s.body.state)).toEqual(['success']);
      const created = fx.github.requests.filter((r) => r.operationId === 'repos/create-deployment' && r.body.payload?.app === app);
      expect(created).toHaveLength(1);
    }
    expect(finals.length).toBeGreaterThanOrEqual(3);
    expect(fx.github.errors).toEqual([]);
    const running = (await host.runtime.list()).filter((c) => c.status === 'running').map((c) => c.id).sort();
    expect(running).toEqual([containerIdFor('production', 'app1'), containerIdFor('production', 'app2'), containerIdFor('production', 'app3')]);
  }, 180_000);
});
