/**
 * `ct quickstart`: the whole loop of the README walkthrough and docs/server.md on one machine, in
 * one directory: a signing key, two transparency logs run by two operators, a trust store, a local
 * registry (docker-registry), a desired-state git repository, a deploy server and an enrolled host
 * (runc); then examples/hello is packed, signed into both logs, pushed, and deployed by a commit,
 * and its greeting is read back through the server's logs API. Ctrl-C stops everything (the host's
 * containers too); a second run reuses the directory (same key, logs, ports, host identity; a
 * port another program took in between (registry, server, a log) is replaced by a new one, said
 * and kept, the trust store following a log that moved;
 * what a killed earlier run left running is stopped first: leftovers.ts).
 *
 * It only connects to the servers it started itself, on 127.0.0.1 and ports it chose.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CtError } from '../core/errors.js';
import { packCtp } from '../bundle/pack/pack.js';
import { openCtp } from '../bundle/read.js';
import { signCtp } from '../attest/sign-ctp.js';
import { pushCtp } from '../oci/push.js';
import type { LogServer } from '../tlog/server.js';
import { containerIdFor } from '../protocol/container-id.js';
import { Children, Interrupted } from './children.js';
import { claimDirectory, commitDesired, createState, ensureDesiredRepo, layoutOf, loadSigningKey, readState, registryAnswers, serverAnswers, writePolicyOnce, writeRegistryConfig, writeState, writeTrustStore, type Layout, type QuickstartState } from './setup.js';
import { startListening } from './ports.js';
import { ChildRecord, stopLeftovers } from './leftovers.js';
import { guide } from './guide.js';
import { LOGS, followLogsInTrustStore, startLogMoving } from './tlogs.js';

export interface QuickstartOptions {
  dir: string;
  /** The repository checkout: examples/hello and bin/ct.js. */
  repoRoot: string;
  registryBin?: string;
  /** Resolves when the user asks to stop (Ctrl-C). */
  stop: Promise<unknown>;
}

interface Io { out(t: string): void; err(t: string): void }

const APP = 'hello';
const ENVIRONMENT = 'production';
const HOST_NAME = 'quickstart';
/** How the output names each child whose port moved. */
const PORT_NAMES: Record<keyof QuickstartState['ports'], string> = { registry: 'registry', server: 'server', log1: 'transparency log log-one', log2: 'transparency log log-two' };

function which(bin: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** What this machine needs, explained (the README set-up line installs all of it). */
function preflight(registryBin: string | undefined): string {
  if (process.getuid?.() !== 0) {
    throw new CtError('USAGE', 'ct quickstart runs a host agent, and hosts run containers with runc: run it as root (e.g. sudo ct quickstart)', {});
  }
  // Each tool the loop runs, and the Debian package that has it: all said at once, before anything starts.
  // iptables-save and iptables-restore: what the host agent runs to build its containers' network.
  const tools: [string, string][] = [['runc', 'runc'], ['git', 'git'], ['multilog', 'daemontools'], ['busybox', 'busybox-static'], ['iptables-save', 'iptables'], ['iptables-restore', 'iptables']];
  const missing = tools.filter(([b]) => !which(b));
  const registry = registryBin ?? which('docker-registry') ?? (existsSync('/usr/bin/docker-registry') ? '/usr/bin/docker-registry' : undefined);
  if (!registry) missing.push(['docker-registry', 'docker-registry']);
  if (missing.length) {
    const names = missing.map(([b]) => b);
    throw new CtError('HOST_TOOL_MISSING', `ct quickstart needs ${names.join(', ')}: ${names.includes('docker-registry') ? 'a local OCI registry (Debian package docker-registry) holds the bundles the server deploys; ' : ''}${names.includes('multilog') ? 'multilog writes the containers\' logs; ' : ''}${names.some((n) => n.startsWith('iptables')) ? 'the host agent builds the containers\' network with iptables; ' : ''}install them with the README set-up line (apt-get install -y ${[...new Set(missing.map(([, pkg]) => pkg))].join(' ')})`, { missing: names });
  }
  return registry as string;
}

/** One quickstart per directory at a time. */
function lock(l: Layout): () => void {
  const file = join(l.dir, 'quickstart.pid');
  if (existsSync(file)) {
    const pid = Number(readFileSync(file, 'utf8'));
    let alive = false;
    try {
      if (pid > 0) alive = (process.kill(pid, 0), true);
    } catch {
      alive = false;
    }
    if (alive && pid !== process.pid) throw new CtError('USAGE', `ct quickstart is already running in ${l.dir} (pid ${pid}); stop it (Ctrl-C) first`, { pid });
  }
  writeFileSync(file, String(process.pid));
  return () => rmSync(file, { force: true });
}

async function api<T>(url: string, key: string, path: string, init: { method?: string; body?: unknown; signal?: AbortSignal } = {}): Promise<{ status: number; body: T }> {
  const res = await fetch(`${url}${path}`, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${key}`, ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: init.body !== undefined ? JSON.stringify(init.body) : undefined,
    signal: init.signal ? AbortSignal.any([init.signal, AbortSignal.timeout(15_000)]) : AbortSignal.timeout(15_000),
  });
  return { status: res.status, body: (await res.json().catch(() => ({}))) as T };
}

interface Deployment { id: string; app: string; commit: string; status: string; reason: string | null; message: string | null }

export async function runQuickstart(o: QuickstartOptions, io: Io): Promise<number> {
  const registryBin = preflight(o.registryBin);
  const l = layoutOf(o.dir);
  const claim = claimDirectory(l);
  const unlock = lock(l);
  const recordFile = join(l.dir, 'children.json');
  try {
    // An earlier run that was killed left its children running (on the ports, the admin key and the host identity this run uses).
    const left = await stopLeftovers(recordFile);
    if (left.length) {
      io.out(`stopped what an interrupted ct quickstart left running: ${left.map((c) => `${c.name} (pid ${c.pid})`).join(', ')}`);
      stopContainers(l);
    }
  } catch (e) {
    unlock();
    throw e;
  }
  const previous = readState(l);
  const state: QuickstartState = previous ?? (await createState(l));
  io.out(previous ? `reusing ${l.dir}` : { created: `created ${l.dir}`, empty: `set up in ${l.dir}`, interrupted: `set up in ${l.dir}, going on from a first run that was interrupted`, existing: `set up in ${l.dir}` }[claim]);
  mkdirSync(l.logs, { recursive: true });
  const record = new ChildRecord(recordFile);
  const children = new Children(l.logs, (child, argv) => record.add(child, argv));
  // Ctrl-C or SIGTERM during the set-up ends the wait in hand and starts nothing more.
  void o.stop.then(() => children.interrupt('asked to stop'));
  const logs: LogServer[] = [];
  const ctBin = join(o.repoRoot, 'bin', 'ct.js');
  let failed = false;
  try {
    // A port chosen earlier may be someone else's by now: the child then moves to a new one, kept for the next run.
    const moved = (name: keyof QuickstartState['ports'], port: number) => {
      if (port === state.ports[name]) return;
      io.out(`the ${PORT_NAMES[name]}'s port ${state.ports[name]} was taken: it listens on ${port} now`);
      state.ports[name] = port;
      writeState(l, state);
    };
    // Two transparency logs, run by two operators (their keys live in their databases).
    mkdirSync(join(l.dir, 'tlog'), { recursive: true });
    for (const [name, logId, operator] of LOGS) {
      const { log, port } = await startLogMoving(l, state, name, logId, operator);
      logs.push(log);
      moved(name, port);
    }
    const signer = loadSigningKey(l);
    // A directory an earlier version made has no deployer key: its trust store is made again with one.
    if (!existsSync(l.trustStore) || !existsSync(l.deployerKey)) await writeTrustStore(l, signer, logs);
    // The trust store says where each log is: compared on every run (a run that stopped between a
    // log's move and this line left the old URL), and what it says is never changed silently.
    else for (const line of await followLogsInTrustStore(l, logs)) io.out(line);
    writePolicyOnce(l, state.keyId);
    ensureDesiredRepo(l);

    const registryNonce = randomBytes(16).toString('hex');
    const { port: registryPort } = await startListening(children, {
      what: 'the registry to answer', port: state.ports.registry, avoid: () => [state.ports.server, state.ports.log1, state.ports.log2],
      start: (port) => children.start('registry', registryBin, ['serve', writeRegistryConfig(l, port, registryNonce)]),
      ready: (port, signal) => registryAnswers(port, registryNonce, signal),
    });
    moved('registry', registryPort);
    const registryHost = `127.0.0.1:${registryPort}`;

    // Ready when its own log says it listens on the port and /healthz answers there: the admin key
    // is sent only once it is known to be this server's port (never to whatever else holds it).
    const { child: server, port: serverPort } = await startListening(children, {
      what: 'the deploy server to answer', port: state.ports.server, avoid: () => [state.ports.registry, state.ports.log1, state.ports.log2],
      start: (port) => {
        writeFileSync(l.serverConfig, `${JSON.stringify({
          host: '127.0.0.1', port, dataDir: l.server, policies: l.policies, trustStore: l.trustStore,
          registries: { allow: [registryHost], allowedAddresses: ['127.0.0.1'], insecure: [registryHost] },
          desiredState: { repo: l.desiredBare, branch: 'main', path: 'deploy', pollSeconds: 30 },
          deployer: { keyFile: l.deployerKey },
        }, null, 2)}\n`);
        return children.start('server', process.execPath, [ctBin, 'serve'], { CT_CONFIG: l.serverConfig, CT_ADMIN_API_KEY: state.adminKey });
      },
      ready: (port, signal, child) => serverAnswers(child, port, signal),
    });
    moved('server', serverPort);
    const url = `http://127.0.0.1:${serverPort}`;
    const call = <T>(path: string, init?: { method?: string; body?: unknown; signal?: AbortSignal }) => api<T>(url, state.adminKey, path, init);

    // The host: enrolled once with a one-time token; its identity stays in host/.
    const hostArgs = [ctBin, 'host', 'run', '--server', url, '--name', HOST_NAME, '--trust-store', l.trustStore, '--state-dir', l.host, '--policies', l.policies, '--environment', ENVIRONMENT];
    if (!state.hostEnrolled) {
      const t = await call<{ token: string }>('/api/v1/hosts/tokens', { method: 'POST', body: { labels: { env: ENVIRONMENT } } });
      if (t.status !== 201) throw new CtError('RUNTIME_FAILED', `could not mint an enrolment token (HTTP ${t.status})`, {});
      hostArgs.push('--enroll-token', t.body.token);
    }
    const host = children.start('host', process.execPath, hostArgs);
    const hostId = await children.until(host, 'the host to connect', async (signal) => {
      const r = await call<{ hosts: { id: string; name: string; connected: boolean }[] }>('/api/v1/hosts', { signal });
      return r.body.hosts?.find((h) => h.name === HOST_NAME && h.connected)?.id;
    });
    if (!state.hostEnrolled) writeState(l, { ...state, hostEnrolled: true });

    // examples/hello: packed (deterministic), signed into both logs once per content, pushed.
    mkdirSync(l.bundles, { recursive: true });
    const unsigned = join(l.bundles, 'hello.ctp');
    const signed = join(l.bundles, 'hello.signed.ctp');
    children.before('packing examples/hello');
    const packed = await packCtp({ from: { dir: join(o.repoRoot, 'examples', 'hello') }, out: unsigned });
    const digestFile = join(l.bundles, 'hello.signed-from');
    if (!existsSync(signed) || !existsSync(digestFile) || readFileSync(digestFile, 'utf8') !== packed.bundleDigest) {
      children.before('signing examples/hello');
      await signCtp(unsigned, { key: signer, logs: logs.map((g) => ({ id: g.logId, url: g.url })), out: signed });
      writeFileSync(digestFile, packed.bundleDigest);
      io.out(`packed and signed examples/hello into both logs: ${signed}`);
    }
    const bundleDigest = (await openCtp(signed)).bundleDigest;
    children.before('pushing examples/hello');
    const pushed = await pushCtp(signed, `${registryHost}/quickstart/hello:1.0.0`, { allowedAddresses: ['127.0.0.1'], plainHttp: true });
    const reference = `${registryHost}/quickstart/hello@${pushed.imageDigest}`;

    // Deployed through a commit; on a later run with nothing new to commit, the same bundle is
    // deployed again through the API if the host is not running it (Ctrl-C stopped it).
    children.before('committing the desired state');
    const sha = commitDesired(l, APP, reference, bundleDigest);
    let wait: (d: Deployment) => boolean;
    if (sha) {
      io.out(`committed ${sha.slice(0, 12)} to ${l.desiredBare} (desired/deploy/production.yaml)`);
      children.before('asking the server to sync');
      await call('/api/v1/sync', { method: 'POST' });
      wait = (d) => d.commit === sha && d.app === APP;
    } else {
      children.before('deploying');
      const r = await call<{ id: string }>('/api/v1/deployments', { method: 'POST', body: { environment: ENVIRONMENT, app: APP, bundle: reference, bundleDigest, hosts: { env: ENVIRONMENT } } });
      if (r.status >= 300) throw new CtError('RUNTIME_FAILED', `the server refused the deploy (HTTP ${r.status}: ${JSON.stringify(r.body).slice(0, 300)})`, {});
      io.out('desired state unchanged: deploying the same bundle again');
      wait = (d) => d.id === r.body.id;
    }
    const done = await children.until(server, 'the deployment to finish', async (signal) => {
      const r = await call<{ deployments: Deployment[] }>(`/api/v1/deployments?environment=${ENVIRONMENT}`, { signal });
      const d = r.body.deployments?.find(wait);
      return d && ['succeeded', 'denied', 'failed'].includes(d.status) ? d : undefined;
    }, 120_000);
    const container = containerIdFor(ENVIRONMENT, APP);
    if (done.status !== 'succeeded') {
      failed = true;
      io.err(`deployment ${done.id} ${done.status}: ${done.reason ?? ''} ${done.message ?? ''} (see ${url}/api/v1/deployments/${done.id}, logs in ${l.logs})`);
    } else {
      const text = await children.until(host, 'the greeting in the container log', async (signal) => {
        const r = await call<{ text?: string }>(`/api/v1/hosts/${hostId}/logs?container=${container}`, { signal });
        return r.body.text?.trim() ? r.body.text : undefined;
      }, 30_000);
      io.out(`\n${APP} is running under runc on host ${HOST_NAME}; its log, read through ${url}/api/v1/hosts/${hostId}/logs:`);
      for (const line of text.trim().split('\n').slice(-10)) io.out(`  | ${line}`);
    }
    // The dashboard opens signed in: a one-time link (10 minutes, used once) for the person at this terminal.
    const link = await call<{ url?: string }>('/api/v1/login-links', { method: 'POST', body: { role: 'admin', name: 'quickstart' } });
    if (link.status !== 201 || !link.body.url) throw new CtError('RUNTIME_FAILED', `could not mint a dashboard sign-in link (HTTP ${link.status})`, {});
    io.out(guide({ l, url, dashboardLink: link.body.url, registryHost, hostId, container, deploymentId: done.id, adminKeyFile: l.state, reference, bundleDigest }));
    await o.stop;
    io.out('stopping: host, server, registry, logs…');
  } catch (e) {
    if (!(e instanceof Interrupted)) {
      failed = true;
      throw e;
    }
    io.out(`${e.message}: stopping what was started…`);
  } finally {
    await children.stopAll();
    record.clear();
    stopContainers(l);
    for (const g of logs) await g.close().catch(() => undefined);
    unlock();
    io.out(`stopped. Everything is kept in ${l.dir}: run ct quickstart --dir ${l.dir} again to reuse it.`);
  }
  return failed ? 1 : 0;
}

/** The host agent leaves its containers running by design; quickstart's Ctrl-C stops them too. */
function stopContainers(l: Layout): void {
  const root = join(l.host, 'runc');
  if (!existsSync(root)) return;
  let ids: string[] = [];
  try {
    ids = execFileSync('runc', ['--root', root, 'list', '-q'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n').filter(Boolean);
  } catch {
    return;
  }
  // As `ct host stop` does: SIGTERM first, and the apps get a grace period (10 s in all) to end
  // cleanly before what still runs is killed (a forced delete alone left hello at exit 137).
  for (const id of ids) {
    try {
      execFileSync('runc', ['--root', root, 'kill', id, 'TERM'], { stdio: 'ignore' });
    } catch {
      // not running
    }
  }
  const until = Date.now() + STOP_GRACE_MS;
  const running = (id: string) => {
    try {
      return (JSON.parse(execFileSync('runc', ['--root', root, 'state', id], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as { status?: string }).status === 'running';
    } catch {
      return false;
    }
  };
  while (ids.some(running) && Date.now() < until) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
  for (const id of ids) {
    try {
      execFileSync('runc', ['--root', root, 'delete', '--force', id], { stdio: 'ignore' });
    } catch {
      // already gone
    }
  }
}

const STOP_GRACE_MS = 10_000;
