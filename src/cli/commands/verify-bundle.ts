import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { action, processIo } from '../io.js';
import { CtError, asIoError } from '../../core/errors.js';
import { isDigest } from '../../core/digest.js';
import type { SigstoreCliOptions } from '../../verify/sigstore/cli-options.js';

interface VerifyBundleOptions extends SigstoreCliOptions {
  bundle: string;
  key?: string;
  json?: boolean;
  staging?: boolean;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

/**
 * `ct verify-bundle`: the sigstore-conformance client protocol, `verify-bundle --bundle F
 * (--certificate-identity I --certificate-oidc-issuer U | --key K) [--trusted-root T] FILE_OR_DIGEST`,
 * exit 0 when the bundle verifies. FILE_OR_DIGEST is a path or `sha256:<hex>`. Always offline:
 * without --trusted-root the public-good root cached by `ct trust update` (or shipped) is used.
 */
export function register(program: Command): void {
  program
    .command('verify-bundle')
    .description('verify a Sigstore bundle (v0.1–v0.3) for a file or a sha256 digest, offline')
    .option('--staging', 'the bundle comes from the Sigstore staging instance (its root must be given: --trusted-root)')
    .requiredOption('--bundle <file>', 'the Sigstore bundle')
    .option('--certificate-identity <san>', 'expected certificate subject (SAN), exact')
    .option('--certificate-identity-regexp <re>', 'expected subject as a regular expression matched against the whole SAN')
    .option('--certificate-oidc-issuer <url>', 'expected OIDC issuer, exact')
    .option('--certificate-claim <name=value>', 'expected Fulcio claim, e.g. repositoryId=123 (repeatable)', collect)
    .option('--key <pem>', 'verify a key-signed bundle with this public key')
    .option('--trusted-root <file>', 'TrustedRoot JSON (default: the public-good root, offline)')
    .option('--tlog-threshold <n>', 'transparency log entries required (default 1)')
    .option('--ctlog-threshold <n>', 'certificate SCTs required (default 1)')
    .option('--timestamp-threshold <n>', 'verified timestamps required (default 1)')
    .option('--json', 'print the verification result as JSON')
    .argument('<file-or-digest>', 'the artifact, or sha256:<hex> of it')
    .action(
      action(async (target: string, opts: VerifyBundleOptions) => {
        // Loaded on use: the Sigstore libraries would slow down every other ct command's start.
        const { identityPolicyFromOptions, publicKeyFromFile, thresholdsFromOptions, trustedRootFromOptions } = await import('../../verify/sigstore/cli-options.js');
        const { SigstoreBundleVerifier } = await import('../../verify/sigstore/verifier.js');
        const policy = identityPolicyFromOptions(opts);
        if (!policy && !opts.key) throw new CtError('USAGE', 'give --certificate-identity(-regexp) with --certificate-oidc-issuer, or --key', {});
        // Only the public-good root ships with @sigstore/tuf; staging's cannot be had offline.
        if (opts.staging && !opts.trustedRoot) throw new CtError('USAGE', '--staging: the staging trusted root is not available offline; pass it with --trusted-root', {});
        const trustedRoot = await trustedRootFromOptions(opts);
        const publicKey = opts.key ? await publicKeyFromFile(opts.key) : undefined;
        let bundleText: Buffer;
        try {
          bundleText = await readFile(opts.bundle);
        } catch (e) {
          throw asIoError(e, opts.bundle);
        }
        let artifact: Buffer | undefined;
        let digest: string | undefined;
        if (isDigest(target)) digest = target;
        else {
          try {
            artifact = await readFile(target);
          } catch (e) {
            throw asIoError(e, target);
          }
        }
        const verifier = new SigstoreBundleVerifier({ trustedRoot, publicKey, thresholds: thresholdsFromOptions(opts), cacheSize: 0 });
        const r = verifier.verify(bundleText, { policy, artifact, digest });
        if (opts.json) {
          processIo.out(JSON.stringify({ verified: true, kind: r.kind, mediaType: r.mediaType, digest: r.digest, signer: r.signer, logEntries: r.logEntries, trustedRoot: trustedRoot.source }));
        } else {
          const who = r.signer.kind === 'keyless' ? `${r.signer.subject} (issuer ${r.signer.issuer})` : `key ${r.signer.keyId}`;
          processIo.out(`OK: ${r.kind === 'dsse' ? 'in-toto attestation' : 'message signature'} over ${r.digest} signed by ${who}; ${r.logEntries.length} log entr${r.logEntries.length === 1 ? 'y' : 'ies'} (${r.logOperators.join(', ')})`);
        }
      }),
    );
}
