/**
 * `ct promote`: opens or updates the pull / merge request that pins a bundle for an app of an
 * environment in a desired-state repository, with the evidence in its body (docs/promotion.md).
 * Tokens come from the environment (never the command line, which other users can read).
 */
import type { Command } from 'commander';
import { CtError } from '../../core/errors.js';
import { action, processIo } from '../io.js';
import { addRegistryOptions, clientOptionsFrom, type RegistryCliOptions } from '../../oci/cli-options.js';

interface PromoteCli extends RegistryCliOptions {
  environment: string;
  app: string;
  bundle: string;
  bundleDigest?: string;
  ctp: string;
  file: string;
  base?: string;
  github?: string;
  gitlab?: string;
  apiUrl?: string;
  tokenEnv?: string;
  trustStore: string;
  trustedRoot?: string;
  policies: string[];
  current?: string;
  fetchCurrent?: boolean;
  statusContext?: string;
  json?: boolean;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function register(program: Command): void {
  addRegistryOptions(
    program
      .command('promote')
      .description('open or update the pull/merge request that pins a verified bundle in an environment of a desired-state repository'),
  )
    .requiredOption('--environment <name>', 'environment to promote into')
    .requiredOption('--app <name>', 'app of that environment (it must already be declared)')
    .requiredOption('--bundle <reference>', 'registry reference pinned by digest (…@sha256:…)')
    .option('--bundle-digest <sha256:…>', 'pin the .ctp digest too (bundleDigest)')
    .requiredOption('--ctp <file>', 'the .ctp the reference names (verified here for the evidence)')
    .requiredOption('--file <path>', 'desired-state file inside the repository')
    .option('--base <branch>', 'branch the change targets (default: the default branch)')
    .option('--github <owner/name>', 'desired-state repository on GitHub')
    .option('--gitlab <project>', 'desired-state project on GitLab (id or group/name)')
    .option('--api-url <url>', 'API base URL (GitHub Enterprise, self-managed GitLab)')
    .option('--token-env <NAME>', 'environment variable holding the token (default GITHUB_TOKEN or GITLAB_TOKEN)')
    .requiredOption('--trust-store <file>', 'VCS trust store to verify the bundle with')
    .option('--trusted-root <file>', 'Sigstore trusted root (keyless bundles)')
    .requiredOption('--policies <path>', 'policy file or directory (repeatable)', collect)
    .option('--current <file>', 'the .ctp that runs now (else fetched with --fetch-current)')
    .option('--fetch-current', 'fetch the bundle that runs now from its registry to compare with')
    .option('--status-context <name>', 'commit-status context (default cerro-torre/promote/<environment>)')
    .option('--json', 'print the result as JSON')
    .action(
      action(async (o: PromoteCli) => {
        if (!!o.github === !!o.gitlab) throw new CtError('USAGE', 'give exactly one of --github owner/name or --gitlab project', {});
        const tokenVar = o.tokenEnv ?? (o.github ? 'GITHUB_TOKEN' : 'GITLAB_TOKEN');
        const token = process.env[tokenVar];
        if (!token) throw new CtError('USAGE', `no token: set ${tokenVar}`, {});
        const { loadPromotionMaterial } = await import('../../promote/material.js');
        const { runPromotion } = await import('../../promote/run.js');
        const { trust, policies } = await loadPromotionMaterial({ trustStore: o.trustStore, trustedRoot: o.trustedRoot, policies: o.policies });
        const client = await clientOptionsFrom(o);
        // The forge API passes the same URL guard as the registry (--allow-address admits private addresses).
        const api = { ...(o.apiUrl ? { apiUrl: o.apiUrl } : {}), allowedAddresses: client.allowedAddresses ?? [] };
        const r = await runPromotion({
          forge: o.github ? { provider: 'github', repository: o.github, token, ...api } : { provider: 'gitlab', project: o.gitlab!, token, ...api },
          environment: o.environment, app: o.app, bundle: o.bundle, ...(o.bundleDigest ? { bundleDigest: o.bundleDigest } : {}),
          file: o.file, ...(o.base ? { base: o.base } : {}), ...(o.statusContext ? { statusContext: o.statusContext } : {}),
          candidate: o.ctp, trust, policies,
          ...(o.current ? { current: { path: o.current } } : o.fetchCurrent ? { current: { fetch: client } } : {}),
        });
        if (o.json) processIo.out(JSON.stringify(r));
        else processIo.out(`${r.outcome}${r.change ? ` ${r.change.url}` : ''} (${r.branch} → ${r.base}; policy ${r.allow ? 'allows' : 'denies'})`);
        return 0;
      }),
    );
}
