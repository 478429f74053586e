/**
 * The build action's inputs (action.yml), read through an InputReader and checked into a typed
 * object before anything runs. Every bad input is a CtError USAGE naming the input, so a user
 * gets one annotation saying which input and why.
 */
import type { ForgeTarget } from '../../src/promote/run.js';
import { readForge } from '../promote/inputs.js';
import { CtError } from '../../src/core/errors.js';
import { runnerContext, type RunnerContext } from './context.js';
import type { InputReader } from './io.js';

export type SourceInput = { dir: string } | { ociLayout: string } | { imageTar: string } | { image: string };

export type SigningInput = { mode: 'keyless'; audience: string } | { mode: 'key'; keyPem: string; passphrase?: string };

export interface SigstoreInput {
  instance: 'public-good' | 'staging' | 'custom';
  fulcioURL?: string;
  rekorURL?: string;
  tsaURL?: string;
  /** Path of a Sigstore SigningConfig JSON. */
  signingConfig?: string;
  /** Path of the TrustedRoot JSON used to verify what was signed (custom instances need one). */
  trustedRoot?: string;
}

export interface RegistryInput {
  username?: string;
  password?: string;
  plainHttp: boolean;
  /** Non-public addresses the registry may resolve to (self-hosted registries, tests). */
  allowedAddresses: string[];
}

export interface BuildInputs {
  source: SourceInput;
  name?: string;
  version?: string;
  securityDir?: string;
  /** Directories `[[include]]` may copy from besides the packed one (ct pack --include-from). */
  includeFrom: string[];
  signing: SigningInput;
  sigstore: SigstoreInput;
  /** VCS trust store (JSON): its `logs` say where each VCS transparency log is and its key. */
  trustStore?: string;
  /** Log ids from the trust store to record in; empty = every log of the trust store with a url. */
  logs: string[];
  logQuorum: number;
  sbom: boolean;
  provenance: boolean;
  push?: string;
  registry: RegistryInput;
  /** Policy files or directories checked before signing (the same engine as the deploy server). */
  policy?: string;
  environment: string;
  statusContext: string;
  githubToken?: string;
  /** Commit the status is posted to (default GITHUB_SHA). */
  sha?: string;
  outputDir: string;
  ctx: RunnerContext;
  /** The job's environment: the CI variables the SLSA provenance is built from. */
  env: NodeJS.ProcessEnv;
  /** After the push: open or update the promotion pull request (inputs promote-*; docs/promotion.md). */
  promote?: { forge: ForgeTarget; environment: string; app: string; file: string; base?: string; policies: string[]; statusContext?: string };
}

/** The promote-* inputs of the build action; the token defaults to github-token. */
function readPromotion(get: InputReader): BuildInputs['promote'] {
  const environment = optional(get, 'promote-environment');
  if (!environment) return undefined;
  const g: InputReader = (n) => (n === 'promote-token' ? get('promote-token') || get('github-token') : get(n));
  const need = (n: string) => {
    const v = optional(get, n);
    if (!v) throw new CtError('USAGE', `input ${n}: required with promote-environment`, { input: n });
    return v;
  };
  const policies = listInput(get, 'promote-policies');
  if (!policies.length) throw new CtError('USAGE', 'input promote-policies: required with promote-environment', { input: 'promote-policies' });
  return {
    forge: readForge(g, 'promote-'),
    environment,
    app: need('promote-app'),
    file: need('promote-file'),
    ...(optional(get, 'promote-base') ? { base: optional(get, 'promote-base')! } : {}),
    policies,
    ...(optional(get, 'promote-status-context') ? { statusContext: optional(get, 'promote-status-context')! } : {}),
  };
}

export const BOOLEAN_TRUE = ['true', 'True', 'TRUE'];
export const BOOLEAN_FALSE = ['false', 'False', 'FALSE'];

function bad(input: string, why: string): CtError {
  return new CtError('USAGE', `input ${input}: ${why}`, { input });
}

/** YAML 1.2 core-schema booleans, as @actions/core's getBooleanInput accepts them. */
export function booleanInput(get: InputReader, name: string, dflt: boolean): boolean {
  const v = get(name).trim();
  if (v === '') return dflt;
  if (BOOLEAN_TRUE.includes(v)) return true;
  if (BOOLEAN_FALSE.includes(v)) return false;
  throw bad(name, `expected true or false, got ${JSON.stringify(v.slice(0, 40))}`);
}

export function intInput(get: InputReader, name: string, dflt: number, min: number, max: number): number {
  const v = get(name).trim();
  if (v === '') return dflt;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw bad(name, `expected an integer from ${min} to ${max}, got ${JSON.stringify(v.slice(0, 40))}`);
  return Number(v);
}

/** One value per line or comma; blank lines and surrounding spaces dropped. */
export function listInput(get: InputReader, name: string): string[] {
  return get(name).split(/[\n,]/).map((s) => s.trim()).filter(Boolean);
}

export function urlInput(get: InputReader, name: string): string | undefined {
  const v = get(name).trim();
  if (!v) return undefined;
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw bad(name, 'not a URL');
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw bad(name, `only http(s) URLs, got ${u.protocol}`);
  if (u.username || u.password) throw bad(name, 'credentials do not belong in the URL');
  return v.replace(/\/+$/, '');
}

export function optional(get: InputReader, name: string): string | undefined {
  const v = get(name).trim();
  return v === '' ? undefined : v;
}

function oneOf<T extends string>(get: InputReader, name: string, allowed: readonly T[], dflt: T): T {
  const v = get(name).trim();
  if (v === '') return dflt;
  if (!(allowed as readonly string[]).includes(v)) throw bad(name, `expected one of ${allowed.join(', ')}, got ${JSON.stringify(v.slice(0, 40))}`);
  return v as T;
}

export function readBuildInputs(get: InputReader, env: NodeJS.ProcessEnv = process.env): BuildInputs {
  const sources: [string, (v: string) => SourceInput][] = [
    ['path', (v) => ({ dir: v })],
    ['oci-layout', (v) => ({ ociLayout: v })],
    ['image-tar', (v) => ({ imageTar: v })],
    ['image', (v) => ({ image: v })],
  ];
  const given = sources.filter(([n]) => get(n).trim() !== '');
  if (given.length !== 1) {
    throw new CtError('USAGE', `inputs: give exactly one source of path, oci-layout, image-tar, image (got ${given.length ? given.map(([n]) => n).join(', ') : 'none'})`, { input: 'path' });
  }
  const source = given[0][1](get(given[0][0]).trim());

  const mode = oneOf(get, 'signing', ['keyless', 'key'] as const, 'keyless');
  let signing: SigningInput;
  if (mode === 'key') {
    const keyPem = get('key').trim();
    if (!keyPem) throw bad('key', 'required when signing is key (a PEM private key, from a secret)');
    if (!keyPem.includes('PRIVATE KEY-----')) throw bad('key', 'not a PEM private key');
    signing = { mode, keyPem, passphrase: optional(get, 'key-passphrase') };
  } else {
    if (get('key').trim()) throw bad('key', 'given, but signing is keyless: set signing: key to sign with it');
    signing = { mode, audience: optional(get, 'oidc-audience') ?? 'sigstore' };
  }

  const instance = oneOf(get, 'sigstore', ['public-good', 'staging', 'custom'] as const, 'public-good');
  const sigstore: SigstoreInput = {
    instance,
    fulcioURL: urlInput(get, 'fulcio-url'),
    rekorURL: urlInput(get, 'rekor-url'),
    tsaURL: urlInput(get, 'tsa-url'),
    signingConfig: optional(get, 'signing-config'),
    trustedRoot: optional(get, 'trusted-root'),
  };
  if (instance === 'custom' && mode === 'keyless') {
    if (!sigstore.signingConfig && !sigstore.fulcioURL) throw bad('fulcio-url', 'a custom Sigstore instance needs fulcio-url (or signing-config)');
    if (!sigstore.trustedRoot) throw bad('trusted-root', 'a custom Sigstore instance needs its trusted root to verify what was signed');
  }
  if (instance !== 'custom' && (sigstore.fulcioURL || sigstore.rekorURL || sigstore.tsaURL || sigstore.signingConfig)) {
    throw bad('sigstore', `service URLs or a signing config are given but sigstore is ${instance}: set sigstore: custom`);
  }

  const trustStore = optional(get, 'trust-store');
  const logs = listInput(get, 'logs');
  const logQuorum = intInput(get, 'log-quorum', 2, 0, 16);
  if (logs.length && !trustStore) throw bad('logs', 'VCS logs are named by their id in trust-store: give trust-store too');
  // Keyless signing also records in Rekor, which counts towards the quorum.
  const reachable = logs.length + (mode === 'keyless' ? 1 : 0);
  if (logs.length && logQuorum > reachable) throw bad('log-quorum', `${logQuorum} exceeds the ${reachable} log(s) the bundle can be recorded in`);

  const push = optional(get, 'push');
  const statusContext = optional(get, 'status-context') ?? 'cerro-torre/build';
  if (!/^[\w./ :-]{1,100}$/.test(statusContext)) throw bad('status-context', 'letters, digits and . / - _ : only, at most 100 characters');
  const ctx = runnerContext(env);
  const outputDir = optional(get, 'output-dir') ?? ctx.runnerTemp;
  if (!outputDir) throw bad('output-dir', 'not given and RUNNER_TEMP is not set');
  const environment = optional(get, 'environment') ?? 'ci';

  return {
    source,
    name: optional(get, 'name'),
    version: optional(get, 'version'),
    securityDir: optional(get, 'security-dir'),
    includeFrom: listInput(get, 'include-from'),
    signing,
    sigstore,
    trustStore,
    logs,
    logQuorum,
    sbom: booleanInput(get, 'sbom', true),
    provenance: booleanInput(get, 'provenance', true),
    push,
    registry: {
      username: optional(get, 'registry-username'),
      password: optional(get, 'registry-password'),
      plainHttp: booleanInput(get, 'registry-plain-http', false),
      allowedAddresses: listInput(get, 'registry-allowed-addresses'),
    },
    policy: optional(get, 'policy'),
    environment,
    statusContext,
    githubToken: optional(get, 'github-token'),
    sha: optional(get, 'sha'),
    outputDir,
    ctx,
    env,
    promote: readPromotion(get),
  };
}

/** Values that must never reach a log line: masked before anything runs. */
export function buildSecrets(i: BuildInputs): string[] {
  const out: string[] = [];
  if (i.githubToken) out.push(i.githubToken);
  if (i.signing.mode === 'key') {
    out.push(i.signing.keyPem, ...i.signing.keyPem.split('\n').map((l) => l.trim()).filter((l) => l.length >= 16 && !l.startsWith('-----')));
    if (i.signing.passphrase) out.push(i.signing.passphrase);
  }
  if (i.registry.password) out.push(i.registry.password);
  return out;
}
