/**
 * `ct verify-attestation VSA.json --trust-store TS --digest sha256:…`: checks a deploy
 * verification summary attestation (SLSA VSA) exported by a deploy server: canonical form,
 * a signature by a key of the trust store's `deployers` role, the subject digest and, when
 * asked, the environment (docs/promotion.md). Exit 0 when it verifies, else the code's exit code.
 */
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { asIoError, CtError } from '../../core/errors.js';
import { isDigest } from '../../core/digest.js';
import { action, processIo } from '../io.js';

export function register(program: Command): void {
  program
    .command('verify-attestation')
    .description('verify a deploy verification summary attestation (SLSA VSA) against a trust store')
    .argument('<file>', 'the VSA (DSSE envelope, canonical JSON) as exported by the deploy server')
    .requiredOption('--trust-store <file>', 'trust store whose deployers role holds the server keys')
    .requiredOption('--digest <sha256:…>', 'image digest the VSA must be about')
    .option('--bundle-digest <sha256:…>', 'the .ctp digest it must name too')
    .option('--environment <name>', 'the environment it must record')
    .option('--json', 'print the verified summary as JSON')
    .action(
      action(async (file: string, o: { trustStore: string; digest: string; bundleDigest?: string; environment?: string; json?: boolean }) => {
        if (!isDigest(o.digest) || (o.bundleDigest !== undefined && !isDigest(o.bundleDigest))) throw new CtError('USAGE', 'digests are sha256:<64 hex>', {});
        const { loadTrustStore } = await import('../../trust/store.js');
        const { verifyDeployVsa, MAX_VSA_BYTES } = await import('../../attest/vsa.js');
        const store = await loadTrustStore(o.trustStore);
        let bytes: Buffer;
        try {
          bytes = await readFile(file);
        } catch (e) {
          throw asIoError(e, file);
        }
        if (bytes.length > MAX_VSA_BYTES) throw new CtError('VSA_INVALID', `${file}: larger than ${MAX_VSA_BYTES} bytes`, {});
        const v = verifyDeployVsa(bytes, { store, imageDigest: o.digest, ...(o.bundleDigest ? { bundleDigest: o.bundleDigest } : {}), ...(o.environment ? { environment: o.environment } : {}) });
        if (o.json) processIo.out(JSON.stringify(v));
        else processIo.out(`verified: ${v.imageDigest} ran in ${v.environment} (signed by ${v.keyId} at ${v.timeVerified})`);
        return 0;
      }),
    );
}
