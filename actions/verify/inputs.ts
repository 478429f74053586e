/** The verify action's inputs (actions/verify/action.yml), checked into a typed object. */
import { CtError } from '../../src/core/errors.js';
import { identityPolicyFromOptions } from '../../src/verify/sigstore/cli-options.js';
import type { IdentityPolicy } from '../../src/verify/sigstore/identity.js';
import { runnerContext, type RunnerContext } from '../build/context.js';
import { booleanInput, listInput, optional } from '../build/inputs.js';
import type { InputReader } from '../build/io.js';
import { NAME } from '../../src/core/name.js';

export interface VerifyInputs {
  source: { path: string } | { reference: string };
  policy: string[];
  environment: string;
  trustStore?: string;
  trustedRoot?: string;
  identity?: IdentityPolicy;
  registry: { username?: string; password?: string; plainHttp: boolean; allowedAddresses: string[]; allowedRegistries: string[] };
  failOnDeny: boolean;
  statusContext: string;
  githubToken?: string;
  sha?: string;
  workDir: string;
  ctx: RunnerContext;
}

export function readVerifyInputs(get: InputReader, env: NodeJS.ProcessEnv = process.env): VerifyInputs {
  const path = optional(get, 'bundle');
  const reference = optional(get, 'reference');
  if ((path === undefined) === (reference === undefined)) throw new CtError('USAGE', 'inputs: give exactly one of bundle (a .ctp path) and reference (registry reference)', { input: 'bundle' });
  const policy = listInput(get, 'policy');
  if (policy.length === 0) throw new CtError('USAGE', 'input policy: required (policy files or directories)', { input: 'policy' });
  let identity: IdentityPolicy | undefined;
  try {
    identity = identityPolicyFromOptions({
      certificateIdentity: optional(get, 'certificate-identity'),
      certificateIdentityRegexp: optional(get, 'certificate-identity-regexp'),
      certificateOidcIssuer: optional(get, 'certificate-oidc-issuer'),
      certificateClaim: listInput(get, 'certificate-claims'),
    });
  } catch (e) {
    throw new CtError('USAGE', `inputs certificate-*: ${(e as Error).message.replace(/--/g, '')}`, { input: 'certificate-identity' }, { cause: e });
  }
  const environment = optional(get, 'environment') ?? 'production';
  if (!NAME.test(environment)) throw new CtError('USAGE', 'input environment: [a-z0-9._-], at most 63 characters', { input: 'environment' });
  const ctx = runnerContext(env);
  const workDir = optional(get, 'output-dir') ?? ctx.runnerTemp;
  if (!workDir) throw new CtError('USAGE', 'input output-dir: not given and RUNNER_TEMP is not set', { input: 'output-dir' });
  return {
    source: path !== undefined ? { path } : { reference: reference! },
    policy,
    environment,
    trustStore: optional(get, 'trust-store'),
    trustedRoot: optional(get, 'trusted-root'),
    identity,
    registry: {
      username: optional(get, 'registry-username'),
      password: optional(get, 'registry-password'),
      plainHttp: booleanInput(get, 'registry-plain-http', false),
      allowedAddresses: listInput(get, 'registry-allowed-addresses'),
      allowedRegistries: listInput(get, 'registry-allowed'),
    },
    failOnDeny: booleanInput(get, 'fail-on-deny', true),
    statusContext: optional(get, 'status-context') ?? 'cerro-torre/verify',
    githubToken: optional(get, 'github-token'),
    sha: optional(get, 'sha'),
    workDir,
    ctx,
  };
}
