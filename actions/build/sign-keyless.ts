/**
 * Keyless signing of a .ctp: each in-toto statement is signed with a Fulcio certificate for the
 * job's OIDC identity and recorded in Rekor (a v0.3 DSSE Sigstore bundle stored as
 * `attestations/<kind>.sigstore.json`), and each signed envelope is also recorded in the VCS
 * transparency logs. Those logs return entries (inclusion proof + SET, checked against the log's
 * key from the trust store on receipt) which go to `attestations/vcs-log-entries.json`
 * (docs/ci.md), since a Sigstore bundle has no place for them.
 */
import { X509Certificate } from '@sigstore/core';
import { CtError } from '../../src/core/errors.js';
import { openCtp } from '../../src/bundle/read.js';
import { rewriteCtp } from '../../src/bundle/write.js';
import { signAttestationForCtp, type SigstoreSignOptions, type SerializedBundle } from '../../src/sign/index.js';
import { submitToLogs, type LogEndpoint, type SubmitResult } from '../../src/tlog/client.js';
import { attestationDigest, attestationLogEntry, type VcsLogEntry } from '../../src/attest/vcs-bundle.js';
import type { DsseEnvelope } from '../../src/attest/dsse.js';
import type { Statement } from '../../src/attest/statement.js';
import { certIdentity } from '../../src/verify/sigstore/identity.js';

export const VCS_LOG_ENTRIES_FILE = 'attestations/vcs-log-entries.json';
export const VCS_LOG_ENTRIES_MEDIA_TYPE = 'application/vnd.cerro-torre.vcs-log-entries+json';

export interface LogRecord {
  logId: string;
  url: string;
  ok: boolean;
  logIndex?: number;
  message?: string;
}

export interface SignedAttestation {
  predicateType: string;
  /** Path inside the .ctp. */
  path: string;
  digest: string;
  rekorLogIndex?: number;
  logs: LogRecord[];
}

export interface KeylessResult {
  bundleDigest: string;
  identity: { issuer: string | null; subject: string | null };
  attestations: SignedAttestation[];
}

export interface KeylessOptions {
  identityToken: string;
  sigstore: Omit<SigstoreSignOptions, 'identityToken' | 'key'>;
  statements: { file: string; statement: Statement }[];
  logs: LogEndpoint[];
  /** Distinct logs (Rekor + VCS) each attestation must reach, else the build fails. */
  logQuorum: number;
  timeoutMs?: number;
}

function logRecords(r: SubmitResult[]): LogRecord[] {
  return r.map((x) => (x.ok ? { logId: x.id, url: x.url, ok: true, logIndex: x.record.logIndex } : { logId: x.id, url: x.url, ok: false, message: `${x.code}: ${x.message}` }));
}

export async function signKeyless(ctpPath: string, opts: KeylessOptions): Promise<KeylessResult> {
  const archive = await openCtp(ctpPath);
  const imageDigest = archive.manifest.image_digest;
  const add: Record<string, Buffer> = {};
  const attestations: SignedAttestation[] = [];
  const receipts: { attestation: string; attestationDigest: string; predicateType: string; logEntries: VcsLogEntry[] }[] = [];
  let identity: KeylessResult['identity'] = { issuer: null, subject: null };
  for (const { file, statement } of opts.statements) {
    const bundle: SerializedBundle = await signAttestationForCtp(statement, { ...opts.sigstore, identityToken: opts.identityToken });
    const env = bundle.dsseEnvelope as unknown as DsseEnvelope;
    if (!env) throw new CtError('MALFORMED_BUNDLE', 'the signer returned a bundle without a DSSE envelope', { file });
    const cert = bundle.verificationMaterial.certificate?.rawBytes ?? bundle.verificationMaterial.x509CertificateChain?.certificates[0]?.rawBytes;
    if (cert) {
      const id = certIdentity(X509Certificate.parse(Buffer.from(cert, 'base64')));
      identity = { issuer: id.issuer, subject: id.subject };
    }
    const digest = attestationDigest(env);
    const entry = attestationLogEntry(digest, imageDigest, statement.predicateType, '');
    const results = opts.logs.length
      ? await submitToLogs({ version: 1, entryType: 'attestation', body: entry.body }, opts.logs, { timeoutMs: opts.timeoutMs ?? 20_000, retries: 2 })
      : [];
    const rekor = bundle.verificationMaterial.tlogEntries?.[0];
    const reached = results.filter((r) => r.ok).length + (rekor ? 1 : 0);
    if (reached < opts.logQuorum) {
      const why = results.map((x) => `${x.id}: ${x.ok ? 'ok' : `${x.code} ${x.message}`}`).join('; ');
      throw new CtError('NETWORK_ERROR', `${file}: recorded in ${reached} transparency log(s), log-quorum is ${opts.logQuorum}${why ? ` (${why})` : ''}`, { file, reached, quorum: opts.logQuorum });
    }
    const path = `attestations/${file}`;
    add[path] = Buffer.from(`${JSON.stringify(bundle, null, 2)}\n`, 'utf8');
    receipts.push({ attestation: path, attestationDigest: digest, predicateType: statement.predicateType, logEntries: results.flatMap((r) => (r.ok ? [r.record as VcsLogEntry] : [])) });
    attestations.push({
      predicateType: statement.predicateType,
      path,
      digest,
      ...(rekor ? { rekorLogIndex: Number(rekor.logIndex) } : {}),
      logs: logRecords(results),
    });
  }
  if (opts.logs.length) {
    const doc = { mediaType: VCS_LOG_ENTRIES_MEDIA_TYPE, version: '0.1.0', imageDigest, attestations: receipts };
    add[VCS_LOG_ENTRIES_FILE] = Buffer.from(`${JSON.stringify(doc, null, 2)}\n`, 'utf8');
  }
  const written = await rewriteCtp(ctpPath, ctpPath, { add });
  return { bundleDigest: written.digest, identity, attestations };
}
