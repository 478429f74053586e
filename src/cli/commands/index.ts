import type { Command } from 'commander';

type Module = { register: (program: Command) => void };

/**
 * One file per command, each registering itself on the program. Loaded lazily: `ct verify`
 * loads only verify.ts and what it imports, so that start-up stays short (tests and CI steps
 * run `ct` hundreds of times). A file may register several top-level commands; list them all.
 */
export const commands: { names: string[]; load: () => Promise<Module> }[] = [
  { names: ['pack'], load: () => import('./pack.js') },
  { names: ['inspect'], load: () => import('./inspect.js') },
  { names: ['unpack'], load: () => import('./unpack.js') },
  { names: ['keygen'], load: () => import('./keygen.js') },
  { names: ['key'], load: () => import('./key.js') },
  { names: ['trust-store'], load: () => import('./trust-store.js') },
  { names: ['log'], load: () => import('./log.js') },
  { names: ['vcs'], load: () => import('./vcs.js') },
  { names: ['verify'], load: () => import('./verify.js') },
  { names: ['sign'], load: () => import('./sign.js') },
  { names: ['attest'], load: () => import('./attest.js') },
  { names: ['sign-bundle'], load: () => import('./sign-bundle.js') },
  { names: ['verify-attestation'], load: () => import('./verify-attestation.js') },
  { names: ['verify-bundle'], load: () => import('./verify-bundle.js') },
  { names: ['trust'], load: () => import('./trust.js') },
  { names: ['push'], load: () => import('./push.js') },
  { names: ['fetch'], load: () => import('./fetch.js') },
  { names: ['policy'], load: () => import('./policy.js') },
  { names: ['promote'], load: () => import('./promote.js') },
  { names: ['profile'], load: () => import('./profile.js') },
  { names: ['host'], load: () => import('./host.js') },
  { names: ['run'], load: () => import('./run.js') },
  { names: ['serve'], load: () => import('./serve.js') },
  { names: ['admission'], load: () => import('./admission.js') },
  { names: ['k8s'], load: () => import('./k8s.js') },
  { names: ['mcp'], load: () => import('./mcp.js') },
  { names: ['api-key'], load: () => import('./api-key.js') },
  { names: ['quickstart'], load: () => import('./quickstart.js') },
];
