import type { Command } from 'commander';
import { join } from 'node:path';
import { action, processIo } from '../io.js';
import { unpackCtp } from '../../bundle/unpack.js';
import { applyLayers } from '../../bundle/apply-layers.js';

/** `ct unpack BUNDLE -o DIR [--rootfs]`: safe extraction (temp dir, then rename). */
export function register(program: Command): void {
  program
    .command('unpack')
    .description('extract a .ctp into a new directory (checked in the same pass); --rootfs also builds DIR/rootfs from the layers')
    .argument('<bundle>', 'the .ctp file')
    .requiredOption('-o, --out <dir>', 'directory to create (must not exist, or be empty)')
    .option('--rootfs', 'also apply the image layers into <dir>/rootfs')
    .action(
      action(async (bundle: string, opts: { out: string; rootfs?: boolean }) => {
        const { archive, image } = await unpackCtp(bundle, opts.out);
        processIo.err(`unpacked ${archive.entries.size} files of ${archive.manifest.name} ${archive.manifest.version} into ${opts.out}`);
        if (opts.rootfs) {
          const r = await applyLayers(archive, join(opts.out, 'rootfs'));
          processIo.err(`rootfs: ${image.layers.length} layer(s) applied${r.skipped.length ? `, ${r.skipped.length} device node(s) skipped` : ''}`);
        }
        processIo.out(archive.bundleDigest);
      }),
    );
}
