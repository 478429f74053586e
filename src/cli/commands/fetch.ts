import type { Command } from 'commander';
import { CtError } from '../../core/errors.js';
import { isDigest } from '../../core/digest.js';
import { action, processIo } from '../io.js';
import { removingTempsOnSignal } from '../interrupt.js';
import { refuseExistingOutput } from '../../core/fs.js';
import { addRegistryOptions, clientOptionsFrom, type RegistryCliOptions } from '../../oci/cli-options.js';

/** `ct fetch REF -o out.ctp`: rebuilds the pushed .ctp byte for byte from the registry. */
export function register(program: Command): void {
  addRegistryOptions(
    program
      .command('fetch')
      .description('rebuild a .ctp pushed with ct push from the registry (byte-identical, checked against its digest)')
      .argument('<reference>', 'host[:port]/repository[:tag][@sha256:…]'),
  )
    .requiredOption('-o, --out <file>', 'the .ctp to write (refused when it exists, unless --force)')
    .option('--force', 'replace an existing --out')
    .option('--bundle-digest <sha256:…>', 'which .ctp to rebuild when several were pushed for the image')
    .option('--concurrency <n>', 'blobs downloaded at once (default 4)')
    .option('--json', 'print the result as JSON')
    .action(
      action(async (reference: string, o: RegistryCliOptions & { out: string; bundleDigest?: string; json?: boolean; concurrency?: string; force?: boolean }) => {
        if (o.bundleDigest !== undefined && !isDigest(o.bundleDigest)) throw new CtError('USAGE', `--bundle-digest ${o.bundleDigest}: not sha256:<64 hex>`, {});
        await refuseExistingOutput(o.out, o.force);
        const opts = await clientOptionsFrom(o);
        // Loaded on use: undici stays out of every other command's start-up.
        const { fetchCtp } = await import('../../oci/fetch.js');
        // Killed mid-download, the temporary beside --out (it may be hundreds of MiB) goes first.
        const r = await removingTempsOnSignal((temporaries) =>
          fetchCtp(reference, o.out, { ...opts, bundleDigest: o.bundleDigest, concurrency: o.concurrency ? Math.max(1, Number(o.concurrency) || 4) : undefined, temporaries, replace: !!o.force }),
        );
        if (o.json) processIo.out(JSON.stringify(r));
        else {
          processIo.out(r.bundleDigest);
          processIo.err(`wrote ${r.path} (${r.size} bytes, image ${r.imageDigest})`);
        }
      }),
    );
}
