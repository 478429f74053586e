/**
 * Sigstore signing with @sigstore/sign's building blocks: a Fulcio signer (keyless, OIDC token) or a
 * key signer, a Rekor witness and an optional TSA witness, assembled by the DSSE or message-signature
 * bundle builder. Output is always a v0.3 bundle in its JSON form.
 */
import {
  DSSEBundleBuilder, MessageSignatureBundleBuilder, FulcioSigner, RekorWitness, TSAWitness,
  type Bundle, type BundleBuilder, type Signer, type Witness,
} from '@sigstore/sign';
import { bundleToJSON, BUNDLE_V03_MEDIA_TYPE, type SerializedBundle } from '@sigstore/bundle';
import { CtError } from '../core/errors.js';
import { INTOTO_PAYLOAD_TYPE } from '../attest/dsse.js';
import { identityProvider } from './identity.js';
import { KeySigner } from './key-signer.js';
import { RekorV2Witness } from './rekor-v2-witness.js';
import { PUBLIC_GOOD, STAGING, urlsFromSigningConfig } from './signing-config.js';
import { assertStatement, type Statement } from './statement.js';

export interface SigstoreSignOptions {
  /** Keyless: explicit OIDC token; otherwise taken from the CI environment. */
  identityToken?: string;
  /** Key signing instead of keyless (ECDSA P-256 or P-384, or Ed25519 private key). */
  key?: KeySigner;
  fulcioURL?: string;
  rekorURL?: string;
  tsaURL?: string;
  /** A SigningConfig JSON object; explicit URLs above override what it says. */
  signingConfig?: unknown;
  staging?: boolean;
  /** Rekor API major version (default 1, or what the signing config names). */
  rekorApiVersion?: 1 | 2;
  /** Rekor v1 entry type for DSSE (default `dsse`). */
  rekorEntryType?: 'dsse' | 'intoto';
  /** Record in Rekor (default true). Without it a TSA timestamp or a key is needed to verify. */
  tlog?: boolean;
  /** TSA: a bare origin gets /api/v1/timestamp appended, a URL with a path is used as is. */
  /** Per-request timeout in ms (default 30 s: Rekor v2 needs 20 s or more) and retries (default 2). */
  timeoutMs?: number;
  retries?: number;
}

export type { SerializedBundle };

function resolveUrls(o: SigstoreSignOptions) {
  const base = o.signingConfig !== undefined ? urlsFromSigningConfig(o.signingConfig)
    : { ...(o.staging ? STAGING : PUBLIC_GOOD), rekorApiVersion: 1 as const, tsaURL: undefined as string | undefined };
  return {
    fulcioURL: o.fulcioURL ?? base.fulcioURL,
    rekorURL: o.rekorURL ?? base.rekorURL,
    rekorApiVersion: o.rekorApiVersion ?? base.rekorApiVersion,
    tsaURL: o.tsaURL ?? base.tsaURL,
  };
}

function builderFor(kind: 'dsse' | 'message', o: SigstoreSignOptions): BundleBuilder {
  const urls = resolveUrls(o);
  const fetchOpts = { timeout: o.timeoutMs ?? 30_000, retry: { retries: o.retries ?? 2, factor: 2, minTimeout: 200, maxTimeout: 2_000 } };
  const signer: Signer = o.key ?? new FulcioSigner({
    identityProvider: identityProvider({ identityToken: o.identityToken }),
    fulcioBaseURL: urls.fulcioURL,
    ...fetchOpts,
  });
  const witnesses: Witness[] = [];
  if (o.tlog !== false) {
    if (!urls.rekorURL) throw new CtError('USAGE', 'no Rekor URL: give one or pass tlog: false', { where: 'rekorURL' });
    // Rekor v2 has no dsse type: DSSE is logged as hashedrekord 0.0.2 over the hash of the PAE.
    witnesses.push(urls.rekorApiVersion === 2
      ? new RekorV2Witness({ rekorBaseURL: urls.rekorURL, ...fetchOpts })
      : new RekorWitness({ rekorBaseURL: urls.rekorURL, majorApiVersion: 1, entryType: o.rekorEntryType ?? 'dsse', fetchOnConflict: true, ...fetchOpts }));
  }
  if (urls.tsaURL) witnesses.push(new TSAWitness({ tsaBaseURL: urls.tsaURL, ...fetchOpts }));
  if (witnesses.length === 0 && !o.key) throw new CtError('USAGE', 'keyless signing needs Rekor or a TSA to prove the signing time', { where: 'witnesses' });
  return kind === 'dsse' ? new DSSEBundleBuilder({ signer, witnesses }) : new MessageSignatureBundleBuilder({ signer, witnesses });
}

/** @sigstore/sign reports failures as InternalError with a code and an HTTPError cause. */
function signingError(e: unknown): CtError {
  if (e instanceof CtError) return e;
  const err = e as { code?: string; message?: string; cause?: { statusCode?: number; message?: string; code?: string } };
  if (err?.code === 'IDENTITY_TOKEN_READ_ERROR' && err.cause instanceof CtError) return err.cause;
  const status = err?.cause?.statusCode;
  const where = err?.code ?? 'sigstore';
  return new CtError('NETWORK_ERROR', `${where}: ${err?.message ?? String(e)}${status ? ` (HTTP ${status}: ${err.cause?.message})` : err?.cause?.message ? ` (${err.cause.message})` : ''}`,
    { where, status }, { cause: e });
}

/** v0.3 keeps one leaf certificate, never a chain (the message builder still emits v0.2). */
function toV03(bundle: Bundle): Bundle {
  const vm = bundle.verificationMaterial;
  if (vm.content.$case === 'x509CertificateChain') {
    vm.content = { $case: 'certificate', certificate: vm.content.x509CertificateChain.certificates[0] };
  }
  bundle.mediaType = BUNDLE_V03_MEDIA_TYPE;
  return bundle;
}

async function create(kind: 'dsse' | 'message', data: Buffer, type: string | undefined, o: SigstoreSignOptions): Promise<SerializedBundle> {
  const builder = builderFor(kind, o);
  try {
    const bundle = await builder.create({ data, type });
    return bundleToJSON(toV03(bundle));
  } catch (e) {
    throw signingError(e);
  }
}

/** Signs any DSSE payload (default type: in-toto). */
export function signDsse(payload: Buffer, o: SigstoreSignOptions, payloadType = INTOTO_PAYLOAD_TYPE): Promise<SerializedBundle> {
  return create('dsse', payload, payloadType, o);
}

/** A message signature over the artifact's bytes (hashedrekord); ECDSA only when signing with a key. */
export async function signMessage(artifact: Buffer, o: SigstoreSignOptions): Promise<SerializedBundle> {
  if (o.key && o.key.algorithm !== 'ecdsa-p256') {
    throw new CtError('KEY_INVALID', `message signatures need an ECDSA P-256 key (${o.key.algorithm} cannot sign the SHA-256 digest Rekor records); use a DSSE bundle`, { where: 'key' });
  }
  return create('message', artifact, undefined, o);
}

/** Signs an in-toto v1 statement: what `ct sign` stores as `attestations/*.sigstore.json`. */
export async function signAttestationForCtp(statement: Statement, o: SigstoreSignOptions): Promise<SerializedBundle> {
  assertStatement(statement, 'statement');
  return signDsse(Buffer.from(JSON.stringify(statement), 'utf8'), o);
}
