import type { Command } from 'commander';
import { CtError } from '../../core/errors.js';
import { action, processIo } from '../io.js';
import { packCtp, type PackSource } from '../../bundle/pack/pack.js';
import { removingTempsOnSignal } from '../interrupt.js';
import { refuseExistingOutput } from '../../core/fs.js';

interface PackCliOptions {
  name?: string;
  version?: string;
  out?: string;
  gzip?: boolean;
  securityDir?: string;
  includeFrom?: string[];
  runtime?: string;
  ociLayout?: string;
  imageTar?: string;
  platform?: string;
  json?: boolean;
  force?: boolean;
}

function parsePlatform(s: string | undefined): { os: string; architecture: string; variant?: string } | undefined {
  if (!s) return undefined;
  const [os, architecture, variant] = s.split('/');
  if (!os || !architecture) throw new CtError('USAGE', `--platform ${s}: expected os/arch[/variant]`, {});
  return { os, architecture, ...(variant ? { variant } : {}) };
}

/** `ct pack [DIR] --out FILE`: build a deterministic `.ctp` from a directory, an OCI layout or an image tar. */
export function register(program: Command): void {
  // `ct pack --version 1.2` must reach pack, not the root's -V/--version: with positional options
  // the root only parses options written before the subcommand name (its own are --version/--help).
  program.enablePositionalOptions();
  program
    .command('pack')
    .description('build a .ctp bundle from a directory (one layer), an OCI image layout or a docker save / OCI archive tar')
    .argument('[dir]', 'directory that becomes the image root filesystem (ct.toml in it gives name, version, [runtime])')
    .requiredOption('-o, --out <file>', 'the .ctp to write (refused when it exists, unless --force)')
    .option('--force', 'replace an existing --out')
    .option('--name <name>', 'bundle name (overrides ct.toml)')
    .option('--version <version>', 'bundle version (overrides ct.toml)')
    .option('--oci-layout <dir>', 'pack the image of an OCI image layout directory')
    .option('--image-tar <file>', 'pack the image of a docker save or OCI archive tar')
    .option('--platform <os/arch>', 'choose the image when an index holds several')
    .option('--runtime <file>', 'manifest inputs (ct.toml format: name, version, [image], [runtime])')
    .option('--security-dir <dir>', 'copy seccomp.json, apparmor and monitor.yaml into security/')
    .option('--include-from <dir>', 'a directory ct.toml [[include]] may copy host files from, besides DIR and the system\'s program directories (repeatable)', (v: string, acc: string[] = []) => [...acc, v])
    .option('--gzip', 'gzip the whole bundle (layers are compressed either way)')
    .option('--json', 'print {out, bundleDigest, imageDigest, size} as JSON')
    .action(
      action(async (dir: string | undefined, opts: PackCliOptions) => {
        const sources = [dir, opts.ociLayout, opts.imageTar].filter((s) => s !== undefined);
        if (sources.length !== 1) throw new CtError('USAGE', 'give exactly one source: DIR, --oci-layout DIR or --image-tar FILE', {});
        await refuseExistingOutput(opts.out!, opts.force);
        const from: PackSource = dir !== undefined ? { dir } : opts.ociLayout !== undefined ? { ociLayout: opts.ociLayout } : { imageTar: opts.imageTar! };
        // Interrupted, the scratch copy of DIR and the partial output go first: left beside an
        // --out inside DIR, the next pack would have packed them.
        const r = await removingTempsOnSignal((temps, scratchDirs) => packCtp({
          from,
          out: opts.out!,
          name: opts.name,
          version: opts.version,
          gzip: opts.gzip,
          securityDir: opts.securityDir,
          includeFrom: opts.includeFrom,
          runtimeFile: opts.runtime,
          platform: parsePlatform(opts.platform),
          temps,
          scratchDirs,
          replace: !!opts.force,
        }));
        if (opts.json) processIo.out(JSON.stringify({ out: r.out, bundleDigest: r.bundleDigest, imageDigest: r.imageDigest, size: r.size }));
        else {
          processIo.out(r.bundleDigest);
          processIo.err(`wrote ${r.out} (${r.manifest.name} ${r.manifest.version}, image ${r.imageDigest}, ${r.size} bytes)`);
        }
      }),
    );
}
