import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { CtError, asIoError } from '../../core/errors.js';
import { canonicalBytes } from '../../core/jcs.js';
import { writeFileAtomic } from '../../core/fs.js';
import type { AttestationKind } from '../../attest/predicates.js';
import { action, processIo } from '../io.js';

interface AttestCliOptions {
  type: string;
  predicate?: string;
  predicateType?: string;
  oidcToken?: string;
  sourceDir?: string;
  out?: string;
}

const KINDS: AttestationKind[] = ['slsa', 'spdx', 'custom'];

/** `ct attest BUNDLE.ctp --type slsa|spdx|custom -o statement.json`: an in-toto v1 statement to sign. */
export function register(program: Command): void {
  program
    .command('attest')
    .description('write an in-toto v1 statement about a .ctp (SLSA provenance, SPDX SBOM or a custom predicate) for ct sign / ct sign-bundle')
    .argument('<bundle>', 'the .ctp')
    .requiredOption('--type <kind>', 'slsa | spdx | custom')
    .option('--predicate <file>', 'custom predicate (JSON or YAML object)')
    .option('--predicate-type <uri>', 'predicate type URI of the custom predicate')
    .option('--oidc-token <token|@file>', 'OIDC token whose claims fill in SLSA provenance (GitHub/GitLab); default $SIGSTORE_ID_TOKEN')
    .option('--source-dir <dir>', 'git checkout that is the source of a local build (default: current directory)')
    .option('-o, --out <file>', 'write the statement here (default: standard output)')
    .action(
      action(async (bundle: string, o: AttestCliOptions) => {
        if (!KINDS.includes(o.type as AttestationKind)) throw new CtError('USAGE', `--type ${o.type}: expected ${KINDS.join(', ')}`, {});
        const kind = o.type as AttestationKind;
        if (kind === 'custom' && (!o.predicate || !o.predicateType)) throw new CtError('USAGE', '--type custom needs --predicate FILE and --predicate-type URI', {});
        if (kind !== 'custom' && (o.predicate || o.predicateType)) throw new CtError('USAGE', '--predicate and --predicate-type go with --type custom', {});
        // Loaded on use (jose, yaml, the bundle reader): other commands start faster.
        const [{ openCtp }, { attestCtp, readCustomPredicate }, { claimsFromToken }] = await Promise.all([
          import('../../bundle/read.js'),
          import('../../attest/predicates.js'),
          import('../../attest/ci-context.js'),
        ]);
        let token = o.oidcToken ?? process.env.SIGSTORE_ID_TOKEN;
        if (token?.startsWith('@')) token = await readFile(token.slice(1), 'utf8').catch((e) => Promise.reject(asIoError(e, token!.slice(1))));
        const claims = kind === 'slsa' && token ? claimsFromToken(token) : undefined;
        const custom = kind === 'custom' ? await readCustomPredicate(o.predicate!, o.predicateType!) : undefined;
        const archive = await openCtp(bundle);
        const statement = await attestCtp(archive, { kind, custom, claims, sourceDir: o.sourceDir });
        const bytes = Buffer.concat([canonicalBytes(statement), Buffer.from('\n')]);
        if (o.out) {
          await writeFileAtomic(o.out, bytes);
          processIo.err(`wrote ${o.out}: ${statement.predicateType} about ${statement.subject.length} subject(s)`);
        } else process.stdout.write(bytes);
      }),
    );
}
