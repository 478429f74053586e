/** The deploy action's inputs (actions/deploy/action.yml), checked into a typed object. */
import { CtError } from '../../src/core/errors.js';
import { runnerContext, type RunnerContext } from '../build/context.js';
import { booleanInput, intInput, listInput, optional, urlInput } from '../build/inputs.js';
import type { InputReader } from '../build/io.js';
import { NAME } from '../../src/core/name.js';

export interface DeployInputs {
  server: string;
  environment: string;
  app: string;
  /** Registry reference pinned by digest (what the build action outputs as registry-reference). */
  bundle: string;
  hosts: Record<string, string>;
  commit?: string;
  /** Audience of the job's OIDC token the server accepts; unused with an API key. */
  audience: string;
  apiKey?: string;
  wait: boolean;
  timeoutSeconds: number;
  pollMs: number;
  statusContext: string;
  githubToken?: string;
  sha?: string;
  ctx: RunnerContext;
}

// The deploy server's own rule (server/routes/deployments.ts): a reference pinned by digest.
const DIGEST_REF = /^[a-z0-9.-]+(?::\d{1,5})?\/[a-z0-9._/-]+(?::[\w.-]{1,128})?@sha256:[0-9a-f]{64}$/;

export function readDeployInputs(get: InputReader, env: NodeJS.ProcessEnv = process.env): DeployInputs {
  const server = urlInput(get, 'server');
  if (!server) throw new CtError('USAGE', 'input server: required (the deploy server URL)', { input: 'server' });
  const need = (n: string, re: RegExp, what: string): string => {
    const v = optional(get, n);
    if (!v || !re.test(v)) throw new CtError('USAGE', `input ${n}: ${v ? 'invalid' : 'required'}: ${what}`, { input: n });
    return v;
  };
  const environment = need('environment', NAME, '[a-z0-9._-], at most 63 characters');
  const app = need('app', NAME, '[a-z0-9._-], at most 63 characters');
  const bundle = need('bundle', DIGEST_REF, 'a registry reference pinned by digest (registry/repo[:tag]@sha256:…)');
  const hosts: Record<string, string> = {};
  for (const h of listInput(get, 'hosts')) {
    const i = h.indexOf('=');
    if (i <= 0) throw new CtError('USAGE', `input hosts: ${JSON.stringify(h.slice(0, 60))}: expected label=value`, { input: 'hosts' });
    hosts[h.slice(0, i).trim()] = h.slice(i + 1).trim();
  }
  const commit = optional(get, 'commit');
  if (commit !== undefined && !/^[0-9a-f]{40}$/.test(commit)) throw new CtError('USAGE', 'input commit: a 40-hex commit SHA', { input: 'commit' });
  return {
    server,
    environment,
    app,
    bundle,
    hosts,
    commit,
    audience: optional(get, 'audience') ?? 'cerro-torre',
    apiKey: optional(get, 'api-key'),
    wait: booleanInput(get, 'wait', true),
    timeoutSeconds: intInput(get, 'timeout-seconds', 600, 1, 6 * 3600),
    pollMs: intInput(get, 'poll-interval-ms', 2000, 50, 60_000),
    statusContext: optional(get, 'status-context') ?? 'cerro-torre/deploy',
    githubToken: optional(get, 'github-token'),
    sha: optional(get, 'sha'),
    ctx: runnerContext(env),
  };
}
