/**
 * Issue 10 item 4: the examples a user copies run. Each one is packed, signed into two logs and
 * verified with `ct` as the README does, then run under runc by the host's LocalRunner (which
 * verifies and judges it again); what the app prints is read from its container log, and the HTTP
 * example is asked for its page inside the container's own network namespace (no bridge needed).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectFacts } from '../../host/facts.js';
import { RuncRuntime } from '../../host/runtime/runc.js';
import { LocalRunner } from '../../host/agent/runner.js';
import { NetworkManager } from '../../host/network/index.js';
import { openCtp } from '../../src/bundle/read.js';
import { PolicyStore } from '../../src/policy/store.js';
import { parseTrustStore, trustStoreDigest } from '../../src/trust/store.js';
import { startLogServer, type LogServer } from '../../src/tlog/server.js';
import { assignmentFor, deleteAllAndClose, runcDeleteAll, runcState, until } from '../host-agent/fixture.js';
import { requireHostTools } from '../host/support.js';
import { repoRoot, runCt } from '../support/cli.js';
import { claimSubnetBase } from '../support/subnets.js';

let dir: string;
let logs: LogServer[] = [];
let runtime: RuncRuntime;
let runner: LocalRunner;
// examples/http asks for network = "bridge": the host gives it one (its own bridge and pool here).
let network: NetworkManager;
let generation = 0;
const p = (n: string) => join(dir, n);

async function ct(args: string[]): Promise<string> {
  const r = await runCt(args, { cwd: dir, env: { SOURCE_DATE_EPOCH: '0' } });
  if (r.code !== 0) throw new Error(`ct ${args.join(' ')} → exit ${r.code}\n${r.stderr}`);
  return r.stdout;
}

/** `ct pack`, `ct sign` (two logs), `ct verify --log-quorum 2`, then the host runs it. */
async function packSignVerifyRun(example: string, app: string) {
  await ct(['pack', join(repoRoot, 'examples', example), '-o', p(`${app}.ctp`)]);
  await ct(['sign', p(`${app}.ctp`), '--key', p('signer.key'), '--log', logs[0].url, '--log', logs[1].url, '--out', p(`${app}.signed.ctp`)]);
  await ct(['verify', p(`${app}.signed.ctp`), '--trust-store', p('trust.json'), '--log-quorum', '2']);
  const a = await openCtp(p(`${app}.signed.ctp`));
  const bundle = { path: p(`${app}.signed.ctp`), bundleDigest: a.bundleDigest, imageDigest: a.manifest.image_digest };
  const assignment = assignmentFor(bundle, { app, generation: ++generation });
  const out = await runner.run(assignment, bundle.path);
  expect(out).toMatchObject({ state: 'running' });
  const id = runner.containerId(assignment);
  expect(runcState(p('host'), id)?.status).toBe('running');
  return id;
}

beforeAll(async () => {
  requireHostTools();
  dir = mkdtempSync(join(tmpdir(), 'ct-examples-'));
  logs = [
    await startLogServer({ db: p('log1.db'), logId: 'log-one', operator: 'Operator One' }),
    await startLogServer({ db: p('log2.db'), logId: 'log-two', operator: 'Operator Two' }),
  ];
  await ct(['keygen', '--out', p('signer'), '--no-password']);
  await ct(['trust-store', 'init', '--id', 'examples', '-o', p('trust.json')]);
  await ct(['trust-store', 'add-key', p('trust.json'), '--role', 'builders', '--key', p('signer.pub')]);
  for (const l of logs) await ct(['trust-store', 'add-log', p('trust.json'), '--id', l.logId, '--operator', l.operator, '--public-key', l.publicKey, '--url', l.url]);
  const storeText = readFileSync(p('trust.json'), 'utf8');
  const store = parseTrustStore(storeText);
  const keyId = (JSON.parse(storeText) as { keys: { builders: { id: string }[] } }).keys.builders[0].id;
  mkdirSync(p('policies'));
  writeFileSync(p('policies/production.policy.yaml'), [
    'apiVersion: cerro-torre.dev/v2', 'kind: Policy', 'name: production', 'mode: strict', 'match:', '  environments: [production]',
    'signers:', `  - keyId: ${keyId}`, 'attestations:', '  - predicateType: https://slsa.dev/provenance/v1', '  - predicateType: https://spdx.dev/Document',
    'logQuorum: 2', 'runtime:', '  seccomp:', '    profile: runtime-default', '',
  ].join('\n'));
  const policies = new PolicyStore([p('policies')]);
  const loaded = await policies.reload();
  if (!loaded.ok) throw new Error(`policies: ${loaded.error?.code}`);
  const facts = await collectFacts();
  runtime = await RuncRuntime.open({ stateDir: p('host'), unifiedCgroupMount: facts.cgroup.unifiedMount });
  network = new NetworkManager({ stateDir: p('host'), subnetBase: claimSubnetBase(), bridgePrefix: `cte${process.pid % 100000}b` });
  runner = new LocalRunner({ stateDir: p('host'), trust: () => ({ store, storeDigest: trustStoreDigest(store) }), policies, facts: async () => facts, runtime, network });
}, 60_000);

afterAll(async () => {
  if (runtime) {
    await deleteAllAndClose(runtime);
    await network.recover(() => 'gone');
    network.close();
    runcDeleteAll(p('host'));
  }
  for (const l of logs) await l.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('examples/ run as packed from a fresh checkout', () => {
  it('examples/hello: the image holds its own /bin/sh (busybox) and prints its greeting and message under runc', async () => {
    const id = await packSignVerifyRun('hello', 'hello');
    const log = await until('the greeting', async () => {
      const text = await runtime.logs(id);
      return text.includes('one-layer OCI image') ? text : undefined;
    });
    expect(log).toContain('hello from a .ctp\n');
    expect(log).toContain('This file was packed by ct pack into a one-layer OCI image.');
    expect(log).not.toMatch(/not found|can't|No such file/);
    // It stays up as a service, and stops cleanly on TERM (the shell's trap, not a KILL after the grace).
    expect(runcState(p('host'), id)?.status).toBe('running');
    const stopped = await runtime.stop(id, 10_000);
    expect(stopped.exitCode).toBe(0);
  }, 60_000);

  it('examples/http: busybox httpd serves the page inside the container network namespace', async () => {
    const id = await packSignVerifyRun('http', 'hello-http');
    await until('the start line', async () => (await runtime.logs(id)).includes('serving /www on port 8080'));
    const pid = runcState(p('host'), id)!.pid;
    // Asked from inside the container's own network namespace: the app listens on 8080 there.
    const page = await until('the page', () => {
      try {
        return execFileSync('nsenter', ['-t', String(pid), '-n', '/bin/busybox', 'wget', '-qO-', 'http://127.0.0.1:8080/'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      } catch {
        return undefined;
      }
    });
    expect(page).toContain('<p>hello over HTTP from a signed .ctp</p>');
    // And the request is in the app's log (httpd -v).
    await until('the request logged', async () => /response:200/.test(await runtime.logs(id)));
    // A stop (Ctrl-C, ct host stop, a replace) ends it on TERM at once, not by KILL after the whole
    // 10 s grace: before, httpd was PID 1, where the TERM it does not handle is ignored.
    const t0 = Date.now();
    const stopped = await runtime.stop(id, 10_000);
    expect(Date.now() - t0).toBeLessThan(3_000);
    expect(stopped.exitCode).toBe(0);
  }, 60_000);
});
