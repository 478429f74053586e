import type { Command } from 'commander';
import { action, processIo } from '../io.js';
import { timeoutOption } from '../../core/timeout-option.js';
import type { TrustUpdateResult } from '../../verify/sigstore/tuf-refresh.js';

// Loaded on use: @sigstore/tuf would slow down every other ct command's start.
const roots = () => import('../../verify/sigstore/trusted-root.js');

interface TrustUpdateCli {
  mirror?: string;
  cacheDir?: string;
  timeout?: string;
  allowAddress?: string[];
  json?: boolean;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

function age(seconds: number | null): string {
  if (seconds === null) return 'never refreshed (root shipped with @sigstore/tuf)';
  if (seconds < 3600) return `${Math.round(seconds / 60)} min old`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h old`;
  return `${Math.round(seconds / 86400)} days old`;
}

function describe(r: TrustUpdateResult): string {
  if (r.updated) return `trusted root refreshed from ${r.mirror} (${r.digest})`;
  return `offline: could not reach ${r.mirror} (${r.error}); using the ${r.source === 'cache' ? 'cached' : 'shipped'} root ${r.digest}, ${age(r.ageSeconds)}`;
}

/**
 * `ct trust update`: refresh the public-good Sigstore trusted root through TUF. Offline it keeps the
 * cached root (or the one shipped with @sigstore/tuf), says so, reports its age and exits 0: every
 * verification stays possible offline. `ct trust status` shows which root verification uses.
 */
export function register(program: Command): void {
  const trust = program.command('trust').description('Sigstore trusted root (public-good, via TUF)');
  trust
    .command('update')
    .description('refresh the public-good trusted root via TUF; offline, report the cached root and its age')
    .option('--mirror <url>', 'TUF mirror (default https://tuf-repo-cdn.sigstore.dev)')
    .option('--cache-dir <dir>', 'where the root is kept (default CT_SIGSTORE_CACHE or ~/.cache/cerro-torre/sigstore)')
    .option('--timeout <ms>', 'per-request timeout (default 10000)')
    .option('--allow-address <ip>', 'a non-public address the mirror may resolve to (repeatable)', collect)
    .option('--json', 'print the result as JSON')
    .action(
      action(async (opts: TrustUpdateCli) => {
        const { updateTrustedRoot } = await import('../../verify/sigstore/tuf-refresh.js');
        const r = await updateTrustedRoot({
          cacheDir: opts.cacheDir ?? (await roots()).defaultTrustCacheDir(),
          mirrorURL: opts.mirror,
          timeoutMs: opts.timeout === undefined ? undefined : timeoutOption(opts.timeout),
          allowedAddresses: opts.allowAddress,
        });
        if (!r.updated) processIo.err(`warning: ${describe(r)}`);
        if (opts.json) processIo.out(JSON.stringify(r));
        else if (r.updated) processIo.out(describe(r));
      }),
    );
  trust
    .command('status')
    .description('show which trusted root offline verification uses, and its age')
    .option('--cache-dir <dir>', 'cache directory (default CT_SIGSTORE_CACHE or ~/.cache/cerro-torre/sigstore)')
    .option('--json', 'print as JSON')
    .action(
      action(async (opts: { cacheDir?: string; json?: boolean }) => {
        const { defaultTrustCacheDir, publicGoodTrustedRoot, readTrustState } = await roots();
        const dir = opts.cacheDir ?? defaultTrustCacheDir();
        const root = publicGoodTrustedRoot(dir);
        const state = root.source.startsWith('cache:') ? readTrustState(dir) : null;
        const ageSeconds = state ? Math.round((Date.now() - Date.parse(state.updatedAt)) / 1000) : null;
        const out = { source: root.source, digest: root.digest, updatedAt: state?.updatedAt ?? null, ageSeconds };
        processIo.out(opts.json ? JSON.stringify(out) : `${root.source} ${root.digest}, ${age(ageSeconds)}`);
      }),
    );
}
