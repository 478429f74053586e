/** The promote action's inputs (actions/promote/action.yml; templates/promote.yml on GitLab), checked into a typed object. */
import { CtError } from '../../src/core/errors.js';
import type { ForgeTarget } from '../../src/promote/run.js';
import { booleanInput, listInput, optional, urlInput } from '../build/inputs.js';
import type { InputReader } from '../build/io.js';

export interface PromoteActionInputs {
  forge: ForgeTarget;
  environment: string;
  app: string;
  bundle: string;
  bundleDigest?: string;
  ctp: string;
  file: string;
  base?: string;
  trustStore: string;
  trustedRoot?: string;
  policies: string[];
  current?: string;
  fetchCurrent: boolean;
  registry: { plainHttp: boolean; allowedAddresses: string[]; username?: string; password?: string };
  statusContext?: string;
}

const need = (get: InputReader, n: string, what: string): string => {
  const v = optional(get, n);
  if (!v) throw new CtError('USAGE', `input ${n}: required (${what})`, { input: n });
  return v;
};

/** The forge from inputs: a GitLab project, a GitHub App installation, or a GitHub token (default the job's). */
export function readForge(get: InputReader, prefix = ''): ForgeTarget {
  const p = (n: string) => `${prefix}${n}`;
  const url = urlInput(get, p('api-url'));
  // Every forge URL passes the URL guard; a private-network API must be allowed explicitly.
  const allowed = listInput(get, p('api-allowed-addresses'));
  const apiUrl = url ? { apiUrl: url, ...(allowed.length ? { allowedAddresses: allowed } : {}) } : {};
  const gitlab = optional(get, p('gitlab-project'));
  if (gitlab) return { provider: 'gitlab', project: gitlab, token: need(get, p('token'), 'a GitLab token with api scope'), ...apiUrl };
  const repository = need(get, p('repository'), 'owner/name of the desired-state repository');
  const appId = optional(get, p('app-id'));
  if (appId) {
    const installationId = Number(need(get, p('installation-id'), 'the GitHub App installation id'));
    if (!Number.isInteger(installationId) || installationId <= 0) throw new CtError('USAGE', `input ${p('installation-id')}: a positive integer`, {});
    return { provider: 'github', repository, app: { appId, privateKey: need(get, p('app-private-key'), 'the GitHub App private key (PEM)'), installationId }, ...apiUrl };
  }
  return { provider: 'github', repository, token: need(get, p('token'), 'a token with contents and pull-requests write'), ...apiUrl };
}

export function readPromoteInputs(get: InputReader, prefix = ''): PromoteActionInputs {
  const p = (n: string) => `${prefix}${n}`;
  const current = optional(get, p('current'));
  return {
    forge: readForge(get, prefix),
    environment: need(get, p('environment'), 'the environment to promote into'),
    app: need(get, p('app'), 'the app of that environment'),
    bundle: need(get, p('bundle'), 'registry reference pinned by digest'),
    ...(optional(get, p('bundle-digest')) ? { bundleDigest: optional(get, p('bundle-digest'))! } : {}),
    ctp: need(get, p('ctp'), 'the .ctp the reference names'),
    file: need(get, p('file'), 'the desired-state file in the repository'),
    ...(optional(get, p('base')) ? { base: optional(get, p('base'))! } : {}),
    trustStore: need(get, 'trust-store', 'the trust store to verify the bundle with'),
    ...(optional(get, 'trusted-root') ? { trustedRoot: optional(get, 'trusted-root')! } : {}),
    policies: (() => {
      const l = listInput(get, p('policies'));
      if (!l.length) throw new CtError('USAGE', `input ${p('policies')}: required (policy files or directories)`, {});
      return l;
    })(),
    ...(current ? { current } : {}),
    fetchCurrent: booleanInput(get, p('fetch-current'), true),
    registry: {
      plainHttp: booleanInput(get, 'registry-plain-http', false),
      allowedAddresses: listInput(get, 'registry-allowed-addresses'),
      ...(optional(get, 'registry-username') ? { username: optional(get, 'registry-username')! } : {}),
      ...(optional(get, 'registry-password') ? { password: optional(get, 'registry-password')! } : {}),
    },
    ...(optional(get, p('status-context')) ? { statusContext: optional(get, p('status-context'))! } : {}),
  };
}
