import type { Command } from 'commander';
import { action, processIo } from '../io.js';
import { addRegistryOptions, clientOptionsFrom, type RegistryCliOptions } from '../../oci/cli-options.js';

/** `ct push BUNDLE.ctp REGISTRY/REPO[:TAG]`: image, attestations as referrers, and the rebuild recipe. */
export function register(program: Command): void {
  addRegistryOptions(
    program
      .command('push')
      .description('push the image of a .ctp to an OCI registry, with its attestations as referrers and what ct fetch needs to rebuild the .ctp')
      .argument('<bundle>', 'the .ctp to push')
      .argument('<reference>', 'host[:port]/repository[:tag]'),
  )
    .option('--concurrency <n>', 'blobs uploaded at once (default 4)')
    .option('--json', 'print the result as JSON')
    .action(
      action(async (bundle: string, reference: string, o: RegistryCliOptions & { json?: boolean; concurrency?: string }) => {
        const opts = await clientOptionsFrom(o);
        // Loaded on use: undici and the bundle reader stay out of every other command's start-up.
        const { pushCtp } = await import('../../oci/push.js');
        const r = await pushCtp(bundle, reference, { ...opts, concurrency: o.concurrency ? Math.max(1, Number(o.concurrency) || 4) : undefined });
        if (o.json) processIo.out(JSON.stringify(r));
        else {
          processIo.out(r.reference);
          processIo.err(`pushed ${r.imageDigest} (${r.uploadedBytes} bytes uploaded, ${r.skippedBlobs} blobs already there); ${r.artifacts.length} attestation(s) and the .ctp recipe attached via ${r.referrers === 'api' ? 'the referrers API' : 'the sha256-<hex> tag'}`);
        }
      }),
    );
}
