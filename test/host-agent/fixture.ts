/**
 * Shared set-up of the host agent acceptance tests (issue 7): real bundles (a static busybox app
 * that sleeps), signed with a fresh Ed25519 key and recorded in two local transparency logs; the
 * trust store and policy directory a host judges them with; helpers that ask runc itself what it
 * runs. Nothing here stands in for the code under test.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packCtp } from '../../src/bundle/pack/pack.js';
import { rewriteCtp } from '../../src/bundle/write.js';
import { openCtp } from '../../src/bundle/read.js';
import { minimalProvenance, signCtp } from '../../src/attest/sign-ctp.js';
import { PREDICATE_SLSA_PROVENANCE_V1 } from '../../src/attest/statement.js';
import { checkOciLayout } from '../../src/bundle/check-layout.js';
import { startLogServer, type LogServer } from '../../src/tlog/server.js';
import { keyIdOf, spkiBase64 } from '../../src/trust/keyid.js';
import { parseTrustStore, trustStoreDigest } from '../../src/trust/store.js';
import type { TrustMaterial } from '../../src/verify/report.js';
import type { Assignment } from '../../src/protocol/messages.js';
import { RuncRuntime } from '../../host/runtime/runc.js';

export interface BundleFile {
  path: string;
  bundleDigest: string;
  imageDigest: string;
}

export type BundleName = 'unsigned' | 'signed' | 'partial' | 'tampered' | 'uncovered' | 'armored';

export interface AgentFixture {
  dir: string;
  logs: LogServer[];
  trustStorePath: string;
  trust: TrustMaterial;
  /** production and edge: signed + two logs + seccomp; hardened: the same and AppArmor required. */
  policiesDir: string;
  /** The same, except that edge requires AppArmor too (a host stricter than its server). */
  hostPoliciesDir: string;
  bundles: Record<BundleName, BundleFile>;
  /** Packs `app/` (the static busybox) with this ct.toml and signs it like `signed`: a bundle the policies approve. */
  signApp(name: string, ctToml: string): Promise<BundleFile>;
  cleanup(): Promise<void>;
}

/** A confining AppArmor profile (no ux, no unconfined/complain flag) that apparmor_parser -Q accepts. */
export const APPARMOR_PROFILE = [
  'profile hello flags=(attach_disconnected,mediate_deleted) {',
  '  file,',
  '  signal (receive) peer=unconfined,',
  '  deny /proc/sys/** w,',
  '  deny mount,',
  '}',
  '',
].join('\n');

const CT_TOML = [
  'name = "hello"', 'version = "1.0.0"', '', '[runtime]', 'user = "65534:65534"', 'read_only_rootfs = true',
  'capabilities = []', 'network = "none"', 'command = ["/bin/busybox", "sleep", "600"]', '',
].join('\n');

/**
 * A sleeper with an exec health check: healthy once /tmp/ready exists, which it makes after
 * `readyAfter` seconds (never when undefined). Checked every 0.3 s, 2 retries, `startPeriod` s.
 */
export function checkedSleeper(name: string, readyAfter: number | undefined, startPeriod: number): string {
  return [
    `name = "${name}"`, 'version = "2.0.0"', '', '[runtime]', 'user = "65534:65534"', 'read_only_rootfs = true', 'capabilities = []', 'network = "none"',
    readyAfter === undefined ? 'command = ["/bin/busybox", "sleep", "600"]' : `command = ["/bin/busybox", "sh", "-c", "sleep ${readyAfter}; /bin/busybox touch /tmp/ready; exec /bin/busybox sleep 600"]`,
    '', '[runtime.healthcheck]', 'type = "exec"', 'command = ["/bin/busybox", "test", "-e", "/tmp/ready"]',
    'interval = 0.3', 'timeout = 1', 'retries = 2', `start_period = ${startPeriod}`, '',
  ].join('\n');
}

export async function describeBundle(path: string): Promise<BundleFile> {
  const a = await openCtp(path);
  return { path, bundleDigest: a.bundleDigest, imageDigest: a.manifest.image_digest };
}

export async function agentFixture(): Promise<AgentFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'ct-host-agent-'));
  const p = (n: string) => join(dir, n);
  const logs: LogServer[] = [];
  try {
    mkdirSync(p('app/bin'), { recursive: true });
    copyFileSync('/bin/busybox', p('app/bin/busybox'));
    writeFileSync(p('app/ct.toml'), CT_TOML);
    mkdirSync(p('security'));
    writeFileSync(p('security/apparmor'), APPARMOR_PROFILE);
    await packCtp({ from: { dir: p('app') }, out: p('unsigned.ctp'), mtime: 0 });
    await packCtp({ from: { dir: p('app') }, out: p('armored-unsigned.ctp'), mtime: 0, securityDir: p('security') });

    const key = generateKeyPairSync('ed25519');
    const keyId = keyIdOf(key.publicKey);
    logs.push(await startLogServer({ db: p('log1.db'), logId: 'log-one', operator: 'Operator One' }));
    logs.push(await startLogServer({ db: p('log2.db'), logId: 'log-two', operator: 'Operator Two' }));
    const storeJson = {
      version: 1, id: 'host-agent', updated: '2026-01-01T00:00:00Z',
      keys: { builders: [{ id: keyId, algorithm: 'ed25519', publicKey: spkiBase64(key.publicKey), validFrom: '2024-01-01T00:00:00Z' }] },
      thresholds: {},
      logs: Object.fromEntries(logs.map((l) => [l.logId, { operator: l.operator, publicKey: l.publicKey, url: l.url, algorithm: 'ed25519' }])),
    };
    writeFileSync(p('trust.json'), JSON.stringify(storeJson));
    const store = parseTrustStore(JSON.stringify(storeJson));
    const endpoints = logs.map((l) => ({ id: l.logId, url: l.url }));
    await signCtp(p('unsigned.ctp'), { key: key.privateKey, logs: endpoints, out: p('signed.ctp') });
    // Signed, but with a SLSA provenance only: the policies also require an SPDX document.
    const unsigned = await openCtp(p('unsigned.ctp'));
    const provenance = { type: PREDICATE_SLSA_PROVENANCE_V1, predicate: minimalProvenance(unsigned, checkOciLayout(unsigned)) };
    await signCtp(p('unsigned.ctp'), { key: key.privateKey, logs: endpoints, out: p('partial.ctp'), predicates: [provenance] });
    await signCtp(p('armored-unsigned.ctp'), { key: key.privateKey, logs: endpoints, out: p('armored.ctp') });

    // Tampered after signing: a raised capability in the manifest (a covered file whose digest changed).
    const signed = await openCtp(p('signed.ctp'));
    const manifest = signed.file('manifest.toml').toString('utf8').replace('capabilities = []', 'capabilities = ["CAP_SYS_ADMIN"]');
    await rewriteCtp(p('signed.ctp'), p('tampered.ctp'), { add: { 'manifest.toml': Buffer.from(manifest) } });
    // Added after signing: a security file no attestation names (an unconfined seccomp profile).
    await rewriteCtp(p('signed.ctp'), p('uncovered.ctp'), { add: { 'security/seccomp.json': Buffer.from('{"defaultAction":"SCMP_ACT_ALLOW"}') } });

    mkdirSync(p('policies'));
    const policy = (name: string, env: string, runtime: string[]) => [
      'apiVersion: cerro-torre.dev/v2', 'kind: Policy', `name: ${name}`, 'mode: strict', 'match:', `  environments: [${env}]`,
      'signers:', `  - keyId: ${keyId}`, 'attestations:', '  - predicateType: https://slsa.dev/provenance/v1', '  - predicateType: https://spdx.dev/Document',
      'logQuorum: 2', 'runtime:', '  seccomp:', '    profile: runtime-default', ...runtime, '',
    ].join('\n');
    writeFileSync(p('policies/production.policy.yaml'), policy('production', 'production', []));
    writeFileSync(p('policies/hardened.policy.yaml'), policy('hardened', 'hardened', ['  apparmor:', '    required: true']));
    writeFileSync(p('policies/edge.policy.yaml'), policy('edge', 'edge', []));
    // A host operator's own, stricter set: in `edge` this host requires AppArmor where the server does not.
    mkdirSync(p('host-policies'));
    for (const f of ['production', 'hardened']) copyFileSync(p(`policies/${f}.policy.yaml`), p(`host-policies/${f}.policy.yaml`));
    writeFileSync(p('host-policies/edge.policy.yaml'), policy('edge', 'edge', ['  apparmor:', '    required: true']));

    const bundles = {} as Record<BundleName, BundleFile>;
    for (const n of ['unsigned', 'signed', 'partial', 'tampered', 'uncovered', 'armored'] as const) bundles[n] = await describeBundle(p(`${n}.ctp`));
    const signApp = async (name: string, ctToml: string): Promise<BundleFile> => {
      mkdirSync(p(`apps/${name}/bin`), { recursive: true });
      copyFileSync('/bin/busybox', p(`apps/${name}/bin/busybox`));
      writeFileSync(p(`apps/${name}/ct.toml`), ctToml);
      await packCtp({ from: { dir: p(`apps/${name}`) }, out: p(`apps/${name}-unsigned.ctp`), mtime: 0 });
      await signCtp(p(`apps/${name}-unsigned.ctp`), { key: key.privateKey, logs: endpoints, out: p(`apps/${name}.ctp`) });
      return describeBundle(p(`apps/${name}.ctp`));
    };
    return {
      dir, logs, bundles, signApp,
      trustStorePath: p('trust.json'),
      trust: { store, storeDigest: trustStoreDigest(store) },
      policiesDir: p('policies'),
      hostPoliciesDir: p('host-policies'),
      async cleanup() {
        for (const l of logs) await l.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    for (const l of logs) await l.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

/** An assignment as the server would send it, for `bundle` (digests taken from the file unless overridden). */
export function assignmentFor(b: BundleFile, o: { environment?: string; app: string; generation: number; bundleDigest?: string }): Assignment {
  const bundleDigest = o.bundleDigest ?? b.bundleDigest;
  return {
    deploymentId: randomUUID(), generation: o.generation, environment: o.environment ?? 'production', app: o.app,
    bundle: `127.0.0.1:5000/acme/${o.app}@${b.imageDigest}`, bundleDigest, imageDigest: b.imageDigest,
    download: `/api/v1/hosts/bundles/${bundleDigest}`,
  };
}

// ---- runc, asked directly (what an operator would run) ----

const runcArgs = (stateDir: string, args: string[]) => ['--root', join(stateDir, 'runc'), ...args];

export interface RuncListed { id: string; pid: number; status: string; bundle: string }

/** `runc --root <stateDir>/runc list --format json` (runc prints `null` when there is none). */
export function runcList(stateDir: string): RuncListed[] {
  if (!existsSync(join(stateDir, 'runc'))) return [];
  const out = execFileSync('runc', runcArgs(stateDir, ['list', '--format', 'json']), { encoding: 'utf8' });
  return (JSON.parse(out) as RuncListed[] | null) ?? [];
}

/** `runc state <id>`: undefined when runc does not know the container. */
export function runcState(stateDir: string, id: string): { status: string; pid: number } | undefined {
  try {
    return JSON.parse(execFileSync('runc', runcArgs(stateDir, ['state', id]), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as { status: string; pid: number };
  } catch {
    return undefined;
  }
}

export function runcKill(stateDir: string, id: string, signal: string): void {
  execFileSync('runc', runcArgs(stateDir, ['kill', id, signal]), { stdio: 'ignore' });
}

/** After a suite: every container of these state directories removed (the agent's records, then runc's). */
export async function removeContainers(stateDirs: readonly string[]): Promise<void> {
  for (const stateDir of stateDirs) {
    const rt = await RuncRuntime.open({ stateDir });
    for (const c of await rt.list()) await rt.delete(c.id, { force: true, purge: true }).catch(() => undefined);
    rt.close();
    runcDeleteAll(stateDir);
  }
}

/** Removes every container runc knows under this state directory (`runc delete --force`). */
/** Deletes every container the runtime knows (forced, state purged) and closes it: a test's afterAll. */
export async function deleteAllAndClose(runtime: RuncRuntime): Promise<void> {
  for (const c of await runtime.list().catch(() => [])) await runtime.delete(c.id, { force: true, purge: true }).catch(() => undefined);
  runtime.close();
}

export function runcDeleteAll(stateDir: string): void {
  for (const c of runcList(stateDir)) {
    try {
      execFileSync('runc', runcArgs(stateDir, ['delete', '--force', c.id]), { stdio: 'ignore' });
    } catch {
      // already gone (its supervisor's `runc run` deleted it as it exited)
    }
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== null && v !== false) return v as T;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
