/**
 * What `ct quickstart` creates once under its directory and reuses on every later run: the
 * remembered ports and secrets (quickstart.json, mode 0600), the signing key, the trust store (the
 * key as a builder and both logs), the production policy, the registry configuration (mode 0600:
 * it holds the nonce the registry's answers are known by) and the
 * desired-state repository (a bare repository the server follows and a working clone to edit).
 */
import { execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CtError, asIoError } from '../core/errors.js';
import { tempTargetName } from '../core/fs.js';
import { generateKeyPair, writeKeyPair } from '../trust/keys.js';
import { keyIdOf } from '../trust/keyid.js';
import { addKey, newTrustStore } from '../trust/edit.js';
import { withLog } from './tlogs.js';
import { saveTrustStore } from '../trust/store.js';
import type { Child } from './children.js';
import { freePort, logSince } from './ports.js';

export interface QuickstartState {
  version: 1;
  ports: { server: number; registry: number; log1: number; log2: number };
  /** Bootstrap admin API key of the deploy server (`ctk_…`). */
  adminKey: string;
  keyId: string;
  /** Set once the host has enrolled (its identity is in host/): no token is minted again. */
  hostEnrolled: boolean;
}

export interface Layout {
  dir: string;
  state: string;
  logs: string;
  key: string;
  pub: string;
  trustStore: string;
  policies: string;
  registry: string;
  desiredBare: string;
  desiredWork: string;
  server: string;
  serverConfig: string;
  host: string;
  bundles: string;
  /** The key the server signs deploy VSAs with: the trust store lists it as a deployer. */
  deployerKey: string;
}

export function layoutOf(dir: string): Layout {
  const p = (n: string) => join(dir, n);
  return {
    dir, state: p('quickstart.json'), logs: p('logs'), key: p('signer.key'), pub: p('signer.pub'), trustStore: p('trust.json'),
    policies: p('policies'), registry: p('registry'), desiredBare: p('desired.git'), desiredWork: p('desired'),
    server: p('server'), serverConfig: p('server.json'), host: p('host'), bundles: p('bundles'), deployerKey: p('deployer.key'),
  };
}

/**
 * Written first into a directory quickstart made or found empty, before the lock and the key: what
 * tells a first run's leftovers from the user's own files. A directory holding only signer.key and
 * signer.pub (what `ct keygen --out signer` writes) was taken for one, and that key trusted as the
 * setup's builder.
 */
export const MARKER = '.ct-quickstart';

/** What a first run killed before it wrote quickstart.json leaves beside the marker: the lock, its children, the key it reuses. */
const BEFORE_STATE = new Set([MARKER, 'quickstart.pid', 'children.json', 'signer.key', 'signer.pub']);
/** …and a file of those it was writing when killed: the key's temporaries, the state's (writePrivate). */
const leftByFirstRun = (n: string): boolean => BEFORE_STATE.has(n) || ['signer.key', 'signer.pub'].includes(tempTargetName(n) ?? '') || /^quickstart\.json\.\d+\.tmp$/.test(n);

/** How quickstart came to use its directory: the first line it prints says which. */
export type Claim = 'created' | 'empty' | 'interrupted' | 'existing';

/**
 * Makes the quickstart directory, or takes an existing one that is a quickstart's (quickstart.json in
 * it), empty, or what a first run killed before quickstart.json left (the marker and only the files
 * of BEFORE_STATE). Any other directory is the user's: the run would write its keys, repositories
 * and server over the files there, or trust the user's key (USAGE, as `ct unpack -o` refuses one).
 */
export function claimDirectory(l: Layout): Claim {
  let names: string[];
  try {
    names = readdirSync(l.dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') throw new CtError('USAGE', `${l.dir}: not a directory; give --dir a new or empty directory`, { path: l.dir });
    if (code !== 'ENOENT') throw asIoError(e, l.dir);
    try {
      mkdirSync(l.dir, { recursive: true });
    } catch (e2) {
      throw asIoError(e2, l.dir);
    }
    writeMarker(l);
    return 'created';
  }
  if (existsSync(l.state)) return 'existing';
  if (names.length === 0) {
    writeMarker(l);
    return 'empty';
  }
  if (!names.includes(MARKER) || names.some((n) => !leftByFirstRun(n))) {
    throw new CtError('USAGE', `${l.dir}: not a quickstart directory (no quickstart.json, no ${MARKER}) and not empty: ct quickstart would write its keys, repositories and servers over its files, or trust a key of yours as its builder; give --dir a new or empty directory`, { path: l.dir });
  }
  return 'interrupted';
}

function writeMarker(l: Layout): void {
  try {
    writeFileSync(join(l.dir, MARKER), 'made by ct quickstart: this directory is its set-up (docs/quickstart.md); delete the directory to start over\n', { flag: 'wx' });
  } catch (e) {
    throw asIoError(e, join(l.dir, MARKER));
  }
}

export function readState(l: Layout): QuickstartState | undefined {
  if (!existsSync(l.state)) return undefined;
  try {
    const s = JSON.parse(readFileSync(l.state, 'utf8')) as QuickstartState;
    if (s.version !== 1 || typeof s.adminKey !== 'string' || typeof s.ports?.server !== 'number') throw new Error('unexpected shape');
    return s;
  } catch (e) {
    throw new CtError('JSON_INVALID', `${l.state}: not a quickstart state file (${(e as Error).message}); remove the directory to start over`, { path: l.state });
  }
}

export function writeState(l: Layout, s: QuickstartState): void {
  writePrivate(l.state, `${JSON.stringify(s, null, 2)}\n`);
}

/**
 * Writes a file only its owner reads (it holds a secret or a nonce), whole or not at all: a new
 * file made 0600 then renamed over the old one (writeFileSync's mode only applies to a file it
 * creates, so an older file written 0644 would have kept its mode).
 */
export function writePrivate(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  rmSync(tmp, { force: true });
  try {
    writeFileSync(tmp, text, { mode: 0o600, flag: 'wx' });
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new CtError('IO_ERROR', `${file}: ${(e as Error).message}`, { path: file });
  }
}

/** First run: ports chosen once (the trust store records the log URLs), key pair, secrets. */
export async function createState(l: Layout): Promise<QuickstartState> {
  mkdirSync(l.dir, { recursive: true });
  const pair = generateKeyPair('ed25519');
  if (!existsSync(l.key)) await writeKeyPair(join(l.dir, 'signer'), pair);
  const keyId = existsSync(l.key) ? keyIdOf(loadSigningKey(l)) : pair.keyId;
  // Four different ports: each is free only until its server binds it, and none has started yet.
  const chosen: number[] = [];
  for (let i = 0; i < 4; i++) chosen.push(await freePort(chosen));
  const [server, registry, log1, log2] = chosen;
  const ports = { server, registry, log1, log2 };
  const state: QuickstartState = { version: 1, ports, adminKey: `ctk_${randomBytes(24).toString('base64url')}`, keyId, hostEnrolled: false };
  writeState(l, state);
  return state;
}

export function loadSigningKey(l: Layout): KeyObject {
  try {
    return createPrivateKey(readFileSync(l.key));
  } catch (e) {
    throw new CtError('KEY_INVALID', `${l.key}: ${(e as Error).message}`, { path: l.key });
  }
}

/**
 * The trust store of this setup: the signing key as a builder, the server's deployer key (made
 * here, once) as a deployer — without it every deploy VSA the server signs is one its own trust
 * store does not accept, an error in its log at each deploy — and both logs by their operators.
 */
export async function writeTrustStore(l: Layout, signer: KeyObject, logs: { logId: string; operator: string; publicKey: string; url: string }[]): Promise<void> {
  if (!existsSync(l.deployerKey)) await writeKeyPair(l.deployerKey.replace(/\.key$/, ''), generateKeyPair('ed25519'), undefined, true);
  let store = newTrustStore('quickstart');
  store = addKey(store, 'builders', createPublicKey(signer), { validFrom: '2024-01-01T00:00:00Z' });
  store = addKey(store, 'deployers', createPublicKey(createPrivateKey(readFileSync(l.deployerKey))), { validFrom: '2024-01-01T00:00:00Z' });
  for (const log of logs) store = withLog(store, log);
  await saveTrustStore(l.trustStore, store);
}

/** The policy production hosts are judged by; a user edits it to try a policy change. */
export function writePolicyOnce(l: Layout, keyId: string): void {
  const file = join(l.policies, 'production.policy.yaml');
  if (existsSync(file)) return;
  mkdirSync(l.policies, { recursive: true });
  writeFileSync(file, [
    '# What may run in production (docs/policy.md). Try a change: `logQuorum: 3` (there are only two',
    '# logs), reload the policies and deploy again (ct quickstart prints how): the deploy is denied, saying why.',
    'apiVersion: cerro-torre.dev/v2', 'kind: Policy', 'name: production', 'mode: strict',
    'match:', '  environments: [production]',
    'signers:', `  - keyId: ${keyId}`,
    'attestations:', '  - predicateType: https://slsa.dev/provenance/v1', '  - predicateType: https://spdx.dev/Document',
    'logQuorum: 2',
    'runtime:', '  seccomp:', '    profile: runtime-default', '',
  ].join('\n'));
}

/**
 * The registry answers every request with `nonce` in REGISTRY_NONCE_HEADER (a new one each start):
 * the readiness check knows the answer came from this registry, not from whatever else may listen
 * on its port.
 */
export function writeRegistryConfig(l: Layout, port: number, nonce: string): string {
  mkdirSync(l.registry, { recursive: true });
  const file = join(l.registry, 'config.yml');
  writePrivate(file, [
    'version: 0.1', 'log:', '  level: warn', 'storage:', '  filesystem:', `    rootdirectory: ${join(l.registry, 'storage')}`,
    '  delete:', '    enabled: true', 'http:', `  addr: 127.0.0.1:${port}`, `  secret: quickstart-${port}`,
    '  headers:', `    ${REGISTRY_NONCE_HEADER}: [${nonce}]`, '',
  ].join('\n'));
  return file;
}

export const REGISTRY_NONCE_HEADER = 'X-Ct-Quickstart-Registry';

/** True once the registry started with `nonce` answers /v2/ on `port`. */
export async function registryAnswers(port: number, nonce: string, signal: AbortSignal): Promise<true | undefined> {
  const res = await fetch(`http://127.0.0.1:${port}/v2/`, { signal, redirect: 'manual' });
  await res.body?.cancel();
  return res.ok && res.headers.get(REGISTRY_NONCE_HEADER) === nonce ? true : undefined;
}

/** The line `ct serve` prints once it listens (server/main.ts). */
export const serverListening = (port: number) => `Cerro Torre deploy server listening on http://127.0.0.1:${port}\n`;

/**
 * True once the deploy server `child` (this start of it) listens on `port` and answers there. No
 * secret is sent: until its own log says it bound the port, any program may hold it, and even then
 * the unauthenticated /healthz is all it takes (an answer from the port it holds is its own).
 */
export async function serverAnswers(child: Child, port: number, signal: AbortSignal): Promise<true | undefined> {
  if (!logSince(child.logFile, child.logStart).includes(serverListening(port))) return undefined;
  const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal, redirect: 'manual' });
  await res.body?.cancel();
  return res.status === 200 ? true : undefined;
}

const gitEnv = { ...process.env, GIT_AUTHOR_NAME: 'quickstart', GIT_AUTHOR_EMAIL: 'quickstart@localhost', GIT_COMMITTER_NAME: 'quickstart', GIT_COMMITTER_EMAIL: 'quickstart@localhost' };

export function git(cwd: string, args: string[]): string {
  try {
    return execFileSync('git', args, { cwd, encoding: 'utf8', env: gitEnv, stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new CtError('IO_ERROR', `git ${args[0]} in ${cwd}: ${(err.stderr || err.message).trim().slice(0, 500)}`, { cwd });
  }
}

/** The desired-state repository: `desired.git` (what the server follows) and `desired/` (edit here). */
export function ensureDesiredRepo(l: Layout): void {
  if (!existsSync(l.desiredBare)) execFileSync('git', ['init', '-q', '--bare', '-b', 'main', l.desiredBare]);
  if (!existsSync(join(l.desiredWork, '.git'))) {
    mkdirSync(l.desiredWork, { recursive: true });
    git(l.desiredWork, ['init', '-q', '-b', 'main']);
    git(l.desiredWork, ['remote', 'add', 'origin', l.desiredBare]);
    mkdirSync(join(l.desiredWork, 'deploy'), { recursive: true });
  }
}

/**
 * Commits `deploy/production.yaml` naming the bundle and pushes it; undefined when the file already
 * says exactly that (nothing to commit).
 */
export function commitDesired(l: Layout, app: string, reference: string, bundleDigest: string): string | undefined {
  const file = join(l.desiredWork, 'deploy', 'production.yaml');
  const text = [
    '# Desired state (docs/server.md): what runs where. Edit, commit, push to origin (desired.git),',
    '# then POST /api/v1/sync (or wait for the poll).',
    'environments:', '  production:', '    apps:', `      ${app}:`,
    `        bundle: ${reference}`, `        bundleDigest: ${bundleDigest}`, '        hosts: { env: production }', '',
  ].join('\n');
  mkdirSync(join(l.desiredWork, 'deploy'), { recursive: true });
  if (existsSync(file) && readFileSync(file, 'utf8') === text) return undefined;
  writeFileSync(file, text);
  git(l.desiredWork, ['add', 'deploy/production.yaml']);
  git(l.desiredWork, ['commit', '-qm', `deploy ${app} ${reference.split('@')[1].slice(0, 19)}`]);
  git(l.desiredWork, ['push', '-q', 'origin', 'HEAD:main']);
  return git(l.desiredWork, ['rev-parse', 'HEAD']);
}
