/**
 * Shared set-up of the end-to-end tests: a signed bundle (and a tampered twin) in a real local
 * registry, two transparency logs, a trust store, a policy directory, a desired-state git
 * repository and the GitHub API stand-in with stateful deployments.
 */
import { execFileSync } from 'node:child_process';
import { createHmac, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packCtp } from '../../src/bundle/pack/pack.js';
import { rewriteCtp } from '../../src/bundle/write.js';
import { openCtp } from '../../src/bundle/read.js';
import { signCtp } from '../../src/attest/sign-ctp.js';
import { pushCtp } from '../../src/oci/push.js';
import { startLogServer, type LogServer } from '../../src/tlog/server.js';
import { keyIdOf, spkiBase64 } from '../../src/trust/keyid.js';
import { parseTrustStore, trustStoreDigest } from '../../src/trust/store.js';
import type { TrustMaterial } from '../../src/verify/report.js';
import { startGitHubApi, type GitHubApi, type RecordedRequest } from '../support/github-api.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';

export const WEBHOOK_SECRET = 'webhook-secret';

export interface LoopFixture {
  dir: string;
  registry: TestRegistry;
  github: GitHubApi;
  logs: LogServer[];
  trustStorePath: string;
  trust: TrustMaterial;
  policiesDir: string;
  desiredRepo: string;
  /** References pinned by digest: the signed app (under several names) and a tampered twin. */
  refs: { good: (repo?: string) => Promise<string>; tampered: string };
  /** Packs an app (static busybox + this ct.toml, `security` files such as monitor.yaml under security/), signs it like the good bundle and pushes it; its reference. */
  signedApp(repo: string, ctToml: string, security?: Record<string, string>): Promise<string>;
  /** apps: name → reference, or `{bundle, bundleDigest?, ports?, suspended?}` to pin the .ctp too, publish ports or suspend it. */
  commit(apps: Record<string, string | { bundle: string; bundleDigest?: string; ports?: { host: number; container: number; address?: string }[]; suspended?: boolean }>, message: string): string;
  /** Commits this text as deploy/state.yaml (any environments), pushes it; the commit id. */
  commitText(text: string, message: string): string;
  webhook(serverUrl: string, sha: string): Promise<number>;
  finalStatuses(sha: string): RecordedRequest[];
  cleanup(): Promise<void>;
}

const gitEnv = { ...process.env, GIT_AUTHOR_NAME: 'ci', GIT_AUTHOR_EMAIL: 'ci@e', GIT_COMMITTER_NAME: 'ci', GIT_COMMITTER_EMAIL: 'ci@e' };
const git = (cwd: string, args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8', env: gitEnv }).trim();

export async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== null && v !== false) return v as T;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * `greeting`: what the app prints first (the dashboard's tests make it hostile markup).
 * `stopGraceSeconds`: the app's stop_grace_period (its `sleep` ignores SIGTERM as PID 1, so a stop
 * waits that long before SIGKILL; the runc default is 10 s).
 */
/** `deployers`: keys listed in the trust store's role `deployers` (deploy VSAs). */
export async function loopFixture(opts: { greeting?: string; stopGraceSeconds?: number; deployers?: KeyObject[] } = {}): Promise<LoopFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'ct-loop-'));
  const p = (n: string) => join(dir, n);
  // The app: a static busybox that sleeps, packed as a one-layer image.
  mkdirSync(p('app/bin'), { recursive: true });
  copyFileSync('/bin/busybox', p('app/bin/busybox'));
  const greeting = (opts.greeting ?? 'hello from the container').replace(/['"\\]/g, '');
  writeFileSync(p('app/ct.toml'), `name = "hello"\nversion = "1.0.0"\n\n[runtime]\nuser = "65534:65534"\nread_only_rootfs = true\ncapabilities = []\nnetwork = "none"\ncommand = ["/bin/busybox", "sh", "-c", "echo '${greeting}'; exec /bin/busybox sleep 600"]\n${opts.stopGraceSeconds !== undefined ? `stop_grace_period = ${opts.stopGraceSeconds}\n` : ''}`);
  await packCtp({ from: { dir: p('app') }, out: p('hello.ctp'), mtime: 0 });

  const key = generateKeyPairSync('ed25519');
  const keyId = keyIdOf(key.publicKey);
  const logs = [
    await startLogServer({ db: p('log1.db'), logId: 'log-one', operator: 'Operator One' }),
    await startLogServer({ db: p('log2.db'), logId: 'log-two', operator: 'Operator Two' }),
  ];
  const storeJson = {
    version: 1, id: 'loop', updated: '2026-01-01T00:00:00Z',
    keys: {
      builders: [{ id: keyId, algorithm: 'ed25519', publicKey: spkiBase64(key.publicKey), validFrom: '2024-01-01T00:00:00Z' }],
      ...(opts.deployers?.length ? { deployers: opts.deployers.map((k) => ({ id: keyIdOf(k), algorithm: 'ed25519', publicKey: spkiBase64(k), validFrom: '2024-01-01T00:00:00Z' })) } : {}),
    },
    thresholds: {},
    logs: Object.fromEntries(logs.map((l) => [l.logId, { operator: l.operator, publicKey: l.publicKey, url: l.url, algorithm: 'ed25519' }])),
  };
  writeFileSync(p('trust.json'), JSON.stringify(storeJson));
  const store = parseTrustStore(JSON.stringify(storeJson));
  await signCtp(p('hello.ctp'), { key: key.privateKey, logs: logs.map((l) => ({ id: l.logId, url: l.url })), out: p('signed.ctp') });
  // The tampered twin: the signed bundle with its manifest edited afterwards (a raised capability).
  const signed = await openCtp(p('signed.ctp'));
  const manifest = signed.file('manifest.toml').toString('utf8').replace('capabilities = []', 'capabilities = ["CAP_SYS_ADMIN"]');
  await rewriteCtp(p('signed.ctp'), p('tampered.ctp'), { add: { 'manifest.toml': Buffer.from(manifest) } });

  mkdirSync(p('policies'));
  writeFileSync(p('policies/prod.policy.yaml'), [
    'apiVersion: cerro-torre.dev/v2', 'kind: Policy', 'name: prod', 'mode: strict', 'match:', '  environments: [production]',
    'signers:', `  - keyId: ${keyId}`, 'attestations:', '  - predicateType: https://slsa.dev/provenance/v1', '  - predicateType: https://spdx.dev/Document',
    'logQuorum: 2', 'runtime:', '  seccomp:', '    profile: runtime-default', '',
  ].join('\n'));

  const registry = await startRegistry();
  const push = async (file: string, repo: string) => {
    const r = await pushCtp(p(file), `${registry.host}/${repo}:1.0.0`, { allowedAddresses: ['127.0.0.1'], plainHttp: true });
    return `${registry.host}/${repo}@${r.imageDigest}`;
  };
  const tampered = await push('tampered.ctp', 'acme/evil');

  execFileSync('git', ['init', '-q', '--bare', '-b', 'main', p('desired.git')]);
  const work = p('work');
  execFileSync('git', ['init', '-q', '-b', 'main', work]);
  git(work, ['remote', 'add', 'origin', p('desired.git')]);
  mkdirSync(join(work, 'deploy'));

  // GitHub stand-in whose Deployments API remembers what was created (create, then list).
  const github = await startGitHubApi();
  const created: Record<string, unknown>[] = [];
  github.respond('repos/create-deployment', (req) => {
    const d = { id: 1001 + created.length, sha: req.body.ref, ref: req.body.ref, environment: req.body.environment, payload: req.body.payload };
    created.push(d);
    return { status: 201, body: d };
  });
  github.respond('repos/list-deployments', (req) => ({ status: 200, body: created.filter((d) => d.sha === req.query.sha && d.environment === req.query.environment) }));

  const commitText = (text: string, message: string): string => {
    writeFileSync(join(work, 'deploy', 'state.yaml'), text);
    git(work, ['add', '.']);
    git(work, ['commit', '-qm', message]);
    git(work, ['push', '-q', 'origin', 'HEAD:main']);
    return git(work, ['rev-parse', 'HEAD']);
  };

  return {
    dir, registry, github, logs,
    trustStorePath: p('trust.json'),
    trust: { store, storeDigest: trustStoreDigest(store) },
    policiesDir: p('policies'),
    desiredRepo: p('desired.git'),
    refs: { good: (repo = 'acme/hello') => push('signed.ctp', repo), tampered },
    async signedApp(repo, ctToml, security) {
      const name = repo.replace(/[^a-z0-9]/g, '-');
      mkdirSync(p(`${name}/bin`), { recursive: true });
      copyFileSync('/bin/busybox', p(`${name}/bin/busybox`));
      writeFileSync(p(`${name}/ct.toml`), ctToml);
      if (security) {
        mkdirSync(p(`${name}-security`), { recursive: true });
        for (const [file, text] of Object.entries(security)) writeFileSync(p(`${name}-security/${file}`), text);
      }
      await packCtp({ from: { dir: p(name) }, out: p(`${name}.ctp`), mtime: 0, ...(security ? { securityDir: p(`${name}-security`) } : {}) });
      await signCtp(p(`${name}.ctp`), { key: key.privateKey, logs: logs.map((l) => ({ id: l.logId, url: l.url })), out: p(`${name}-signed.ctp`) });
      return push(`${name}-signed.ctp`, repo);
    },
    commit(apps, message) {
      const lines = Object.entries(apps).map(([app, ref]) =>
        typeof ref === 'string'
          ? `      ${app}:\n        bundle: ${ref}\n        hosts: { env: production }`
          : `      ${app}:\n        bundle: ${ref.bundle}\n${ref.bundleDigest ? `        bundleDigest: ${ref.bundleDigest}\n` : ''}        hosts: { env: production }${ref.ports ? `\n        ports: ${JSON.stringify(ref.ports)}` : ''}${ref.suspended !== undefined ? `\n        suspended: ${ref.suspended}` : ''}`,
      );
      return commitText(`environments:\n  production:\n    apps:\n${lines.join('\n')}\n`, message);
    },
    commitText,
    async webhook(serverUrl, sha) {
      const body = JSON.stringify({ ref: 'refs/heads/main', after: sha, repository: { full_name: 'acme/desired' } });
      const res = await fetch(`${serverUrl}/webhooks/github`, {
        method: 'POST', body,
        headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': `sha256=${createHmac('sha256', WEBHOOK_SECRET).update(body).digest('hex')}` },
      });
      return res.status;
    },
    finalStatuses: (sha) => github.requests.filter((r) => r.operationId === 'repos/create-commit-status' && r.params.sha === sha && r.body.state !== 'pending'),
    async cleanup() {
      await github.close();
      await registry.stop();
      for (const l of logs) await l.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The deploy server of the loop: this fixture's registry, GitHub stand-in, desired-state repository,
 * policies and trust store, silent logs, deploys with a 60 s host timeout. `extra`: more settings.
 */
export async function startLoopServer(fx: LoopFixture, extra: Record<string, unknown> = {}): Promise<import('../../server/start.js').RunningServer> {
  // One after another: jest's ESM loader fails ("request for 'jose' is not in cache") when two
  // dynamic imports link a shared dependency at the same time.
  const { default: pino } = await import('pino');
  const { loadConfig } = await import('../../server/config.js');
  const { startServer } = await import('../../server/start.js');
  const { deployPipeline } = await import('../../server/deploy/wire.js');
  const config = loadConfig({}, {
    port: 0, host: '127.0.0.1', dataDir: `${fx.dir}/server`, policies: fx.policiesDir, trustStore: fx.trustStorePath,
    registries: { allow: [fx.registry.host], allowedAddresses: ['127.0.0.1'], insecure: [fx.registry.host] },
    github: { apiUrl: fx.github.url, token: 'ghs_servertoken', webhookSecrets: [WEBHOOK_SECRET], allowedAddresses: ['127.0.0.1'] },
    desiredState: { repo: fx.desiredRepo, branch: 'main', path: 'deploy', pollSeconds: 3600, report: { provider: 'github', repository: 'acme/desired' } },
    ...extra,
  });
  return startServer(config, { log: pino({ level: 'silent' }), extend: (ctx) => deployPipeline(ctx, { hostTimeoutMs: 60_000 }) });
}

export interface TestHost {
  agent: import('../../host/agent/agent.js').Agent;
  runtime: import('../../host/runtime/runc.js').RuncRuntime;
  runner: import('../../host/agent/runner.js').LocalRunner;
  network?: import('../../host/network/index.js').NetworkManager;
  monitors: import('../../host/monitor/containers.js').ContainerMonitors;
  stop(): Promise<void>;
}

/**
 * A host agent in this process, enrolled with a token minted by `adminKey`, running under runc;
 * with `network`, bridge networking through host/network as `ct host run` wires it.
 */
export async function startTestHost(serverUrl: string, adminKey: string, fx: LoopFixture, name = 'host-1', o: { network?: { subnetBase: string; bridgePrefix: string }; environment?: string } = {}): Promise<TestHost> {
  const { startAgent } = await import('../../host/agent/agent.js');
  const { LocalRunner } = await import('../../host/agent/runner.js');
  const { openAgentRuntime } = await import('../../host/agent/host-runtime.js');
  const { collectFacts } = await import('../../host/facts.js');
  const { PolicyStore } = await import('../../src/policy/store.js');
  const res = await fetch(`${serverUrl}/api/v1/hosts/tokens`, {
    method: 'POST', headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ labels: { env: o.environment ?? 'production' } }),
  });
  const { token } = (await res.json()) as { token: string };
  const stateDir = join(fx.dir, name);
  const facts = await collectFacts();
  const { NetworkManager } = await import('../../host/network/index.js');
  const network = o.network ? new NetworkManager({ stateDir, ...o.network }) : undefined;
  // Wired as `ct host run` wires it: networks resumed and eBPF monitors started before each start.
  const { runtime, monitors, alerts } = await openAgentRuntime({ stateDir, facts, network, log: () => undefined });
  const policies = new PolicyStore([fx.policiesDir]);
  if (!(await policies.reload()).ok) throw new Error('host policies failed to load');
  const runner = new LocalRunner({ stateDir, trust: () => fx.trust, policies, facts: async () => facts, runtime, network });
  const agent = await startAgent({
    serverUrl, stateDir, name, enrollToken: token, facts: async () => facts, maxBackoffMs: 500,
    runner,
    inventory: () => runner.inventory(),
    logs: (c, n) => runner.logs(c, n),
    logLines: (c, o) => runner.logLines(c, o),
    action: (c, req) => runner.action(c, req),
    stopDeployment: (d) => runner.stopDeployment(d),
  });
  alerts.attach((e) => agent.alert(e));
  await until('host connected', () => agent.connected());
  // `ct host stop|start|…` on this state directory go through the agent, as with `ct host run`.
  const { serveRunnerControl } = await import('../../host/agent/control.js');
  const control = await serveRunnerControl(stateDir, runner, () => void agent.resync());
  return {
    agent,
    runtime,
    runner,
    network,
    monitors,
    async stop() {
      await control.close();
      await agent.stop();
      for (const c of await runtime.list()) await runtime.delete(c.id, { force: true, purge: true }).catch(() => undefined);
      await monitors.close();
      runtime.close();
      // Networks follow their containers, all gone now.
      await network?.recover(() => 'gone');
      network?.close();
    },
  };
}
