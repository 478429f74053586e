import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { action, processIo } from '../io.js';
import { timeoutOption } from '../../core/timeout-option.js';
import { CtError, asIoError } from '../../core/errors.js';
import { writeFileAtomic } from '../../core/fs.js';
import { keyringDir, resolvePrivateKeyPath } from '../../trust/keyring.js';
import type { SigstoreSignOptions } from '../../sign/index.js';

interface SignBundleOptions {
  staging?: boolean;
  inToto?: boolean;
  identityToken?: string;
  bundle: string;
  key?: string;
  fulcioUrl?: string;
  rekorUrl?: string;
  tsaUrl?: string;
  signingConfig?: string;
  rekorApiVersion?: string;
  rekorEntryType?: string;
  tlog: boolean;
  timeout?: string;
  retries?: string;
}

async function read(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    throw asIoError(e, path);
  }
}

function int(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new CtError('USAGE', `--${name}: not a non-negative integer: ${v}`, { option: name });
  return Number(v);
}

/**
 * `ct sign-bundle`: the sigstore-conformance client protocol, `sign-bundle [--staging] [--in-toto]
 * --identity-token T --bundle F FILE`. Without --in-toto FILE is signed as a message (hashedrekord);
 * with it FILE is an in-toto statement signed as DSSE. The bundle is v0.3, written atomically.
 */
export function register(program: Command): void {
  program
    .command('sign-bundle')
    .description('sign a file (or an in-toto statement with --in-toto) into a Sigstore v0.3 bundle')
    .option('--staging', 'use the Sigstore staging instance instead of public-good')
    .option('--in-toto', 'FILE is an in-toto statement: sign it as a DSSE envelope')
    .option('--identity-token <jwt>', 'OIDC token (default: the CI job token, GitHub Actions or GitLab SIGSTORE_ID_TOKEN)')
    .requiredOption('--bundle <file>', 'where to write the bundle')
    .option('--key <key>', 'sign with this private key instead of keyless: a PEM file or a keyring key\'s name or id (a file\'s message signature needs ECDSA P-256; Ed25519 signs --in-toto statements; CT_KEY_PASSWORD if encrypted)')
    .option('--fulcio-url <url>', 'Fulcio base URL')
    .option('--rekor-url <url>', 'Rekor base URL')
    .option('--tsa-url <url>', 'RFC 3161 timestamp authority URL')
    .option('--signing-config <file>', 'Sigstore SigningConfig JSON naming the services')
    .option('--rekor-api-version <n>', 'Rekor API major version: 1 or 2')
    .option('--rekor-entry-type <type>', 'Rekor v1 entry type for DSSE: dsse (default) or intoto')
    .option('--no-tlog', 'do not record in a transparency log')
    .option('--timeout <ms>', 'per-request timeout in ms (default 30000; Rekor v2 needs 20000 or more)')
    .option('--retries <n>', 'retries per request (default 2)')
    .argument('<file>', 'the file to sign')
    .action(
      action(async (file: string, opts: SignBundleOptions) => {
        // Loaded on use: @sigstore/sign would slow down every other ct command's start.
        const { KeySigner, signAttestationForCtp, signMessage } = await import('../../sign/index.js');
        const { parseStatement } = await import('../../attest/statement.js');
        const data = await read(file);
        const o: SigstoreSignOptions = {
          identityToken: opts.identityToken,
          staging: opts.staging,
          fulcioURL: opts.fulcioUrl,
          rekorURL: opts.rekorUrl,
          tsaURL: opts.tsaUrl,
          tlog: opts.tlog,
          timeoutMs: opts.timeout === undefined ? undefined : timeoutOption(opts.timeout),
          retries: int(opts.retries, 'retries'),
        };
        if (opts.signingConfig) {
          try {
            o.signingConfig = JSON.parse((await read(opts.signingConfig)).toString('utf8'));
          } catch (e) {
            if (e instanceof CtError) throw e;
            throw new CtError('JSON_INVALID', `${opts.signingConfig}: not JSON`, { path: opts.signingConfig }, { cause: e });
          }
        }
        if (opts.rekorApiVersion !== undefined) {
          if (opts.rekorApiVersion !== '1' && opts.rekorApiVersion !== '2') throw new CtError('USAGE', '--rekor-api-version: 1 or 2', {});
          o.rekorApiVersion = Number(opts.rekorApiVersion) as 1 | 2;
        }
        if (opts.rekorEntryType !== undefined) {
          if (opts.rekorEntryType !== 'dsse' && opts.rekorEntryType !== 'intoto') throw new CtError('USAGE', '--rekor-entry-type: dsse or intoto', {});
          o.rekorEntryType = opts.rekorEntryType;
        }
        if (opts.key) o.key = KeySigner.fromPem(await read(await resolvePrivateKeyPath(keyringDir(), opts.key)), process.env.CT_KEY_PASSWORD);
        const bundle = opts.inToto ? await signAttestationForCtp(parseStatement(data, file), o) : await signMessage(data, o);
        await writeFileAtomic(opts.bundle, `${JSON.stringify(bundle)}\n`);
        processIo.err(`wrote ${opts.bundle} (${bundle.mediaType})`);
      }),
    );
}
