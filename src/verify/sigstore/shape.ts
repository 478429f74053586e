/**
 * What a Sigstore bundle must be before anything in it is trusted, and what is checked when no
 * keyless identity was asked for (#13 finding 5: a verified .ctp carries nothing that is neither
 * a signed subject nor structure the format fixes):
 *
 * - JSON within the depth limit, and exactly the protobuf-specs Bundle: every key is one the model
 *   reads (`bundleFromJSON` silently drops the others, so a bundle could carry megabytes nobody
 *   signed, or both arms of a oneof);
 * - without an identity: a DSSE in-toto statement naming the image digest, whose signature holds
 *   under the key its own certificate carries. The identity and the chain to a trusted root are not
 *   judged (nothing was asked of them), so such a bundle counts for nothing — it is only not junk.
 */
import { createPublicKey } from 'node:crypto';
import { bundleFromJSON, bundleToJSON, type Bundle } from '@sigstore/bundle';
import { toSignedEntity } from '@sigstore/verify';
import { CtError } from '../../core/errors.js';
import { assertJsonDepth, MAX_JSON_DEPTH, valueDepthExceeds } from '../../core/json.js';
import { INTOTO_PAYLOAD_TYPE } from '../../attest/dsse.js';
import { parseStatement, type Statement } from '../../attest/statement.js';

export function parseBundleJson(raw: Buffer | string): unknown {
  assertJsonDepth(raw, 'bundle', 'MALFORMED_BUNDLE');
  try {
    return JSON.parse(typeof raw === 'string' ? raw : raw.toString('utf8'));
  } catch (e) {
    throw new CtError('MALFORMED_BUNDLE', `bundle is not JSON: ${(e as Error).message.slice(0, 200)}`, { where: 'bundle' }, { cause: e });
  }
}

/** bundleFromJSON, refusing any key the model does not read (default values aside). */
export function strictBundleFromJSON(json: unknown): Bundle {
  // Bundles handed over already parsed get the same depth limit as text (unreadKey recurses).
  if (valueDepthExceeds(json)) throw new CtError('MALFORMED_BUNDLE', `bundle: JSON nested deeper than ${MAX_JSON_DEPTH} levels`, { where: 'bundle', limit: MAX_JSON_DEPTH });
  let bundle: Bundle;
  try {
    bundle = bundleFromJSON(json);
  } catch (e) {
    throw new CtError('MALFORMED_BUNDLE', `not a valid Sigstore bundle: ${(e as Error).message.slice(0, 200)}`, { where: 'bundle' }, { cause: e });
  }
  const extra = unreadKey(json, bundleToJSON(bundle), '$');
  if (extra) throw new CtError('MALFORMED_BUNDLE', `not a valid Sigstore bundle: ${extra.slice(0, 200)} is not a field of the format`, { where: extra.slice(0, 200) });
  return bundle;
}

/**
 * The JSON names of the fields of a Sigstore Bundle and the messages inside it (protobuf-specs:
 * bundle, common, rekor, envelope). A key the re-serialised model lacks is allowed only when it is
 * one of these holding its default value (protobuf JSON omits those when writing); any other key,
 * even `"junk": ""`, is bytes nobody signed.
 */
const BUNDLE_FIELDS: ReadonlySet<string> = new Set([
  'mediaType', 'verificationMaterial', 'dsseEnvelope', 'messageSignature', 'publicKey', 'hint', 'x509CertificateChain', 'certificates',
  'rawBytes', 'certificate', 'tlogEntries', 'logIndex', 'logId', 'keyId', 'kindVersion', 'kind', 'version', 'integratedTime',
  'inclusionPromise', 'signedEntryTimestamp', 'inclusionProof', 'rootHash', 'treeSize', 'hashes', 'checkpoint', 'envelope',
  'canonicalizedBody', 'timestampVerificationData', 'rfc3161Timestamps', 'signedTimestamp', 'messageDigest', 'algorithm', 'digest',
  'signature', 'payload', 'payloadType', 'signatures', 'sig', 'keyid',
]);

/** A value protobuf JSON leaves out when writing (the field's default). */
function isDefault(v: unknown): boolean {
  if (v === null || v === '' || v === 0 || v === '0' || v === false) return true;
  if (Array.isArray(v)) return v.length === 0;
  return typeof v === 'object' && Object.keys(v as object).length === 0;
}

/**
 * The first key of `input` that the re-serialised `model` does not hold (a key holding a default
 * value is allowed: protobuf JSON omits those). Depth is bounded by the JSON depth limit.
 */
function unreadKey(input: unknown, model: unknown, path: string): string | undefined {
  if (Array.isArray(input)) {
    const m = Array.isArray(model) ? model : [];
    for (let i = 0; i < input.length; i++) {
      const r = unreadKey(input[i], m[i], `${path}[${i}]`);
      if (r) return r;
    }
    return undefined;
  }
  if (input === null || typeof input !== 'object') return undefined;
  const m = model !== null && typeof model === 'object' && !Array.isArray(model) ? (model as Record<string, unknown>) : {};
  for (const [k, v] of Object.entries(input)) {
    const at = `${path}.${k}`;
    if (!Object.hasOwn(m, k)) {
      if (!BUNDLE_FIELDS.has(k) || !isDefault(v)) return at;
      continue;
    }
    const r = unreadKey(v, m[k], at);
    if (r) return r;
  }
  return undefined;
}

export function inTotoStatement(payloadType: string, payload: Buffer): Statement {
  if (payloadType !== INTOTO_PAYLOAD_TYPE) {
    throw new CtError('SUBJECT_MISMATCH', `DSSE payload type ${JSON.stringify(payloadType).slice(0, 100)} is not in-toto: it names no subject to bind to the artifact`, { payloadType: payloadType.slice(0, 100) });
  }
  return parseStatement(payload, 'dsseEnvelope.payload');
}

/** What @sigstore/verify does not do: the statement must name the artifact/image. */
export function checkSubject(st: Statement, digest: string): void {
  const hex = digest.slice(7);
  if (!st.subject.some((s) => s.digest.sha256?.toLowerCase() === hex)) {
    throw new CtError('SUBJECT_MISMATCH', `in-toto subject does not name ${digest}: subjects are ${st.subject.slice(0, 20).map((s) => `${s.name}@sha256:${s.digest.sha256}`).join(', ')}`.slice(0, 2000), {
      expected: digest,
      actual: st.subject.slice(0, 20).map((s) => ({ name: s.name, sha256: s.digest.sha256 })),
    });
  }
}

/**
 * A Sigstore attestation in a .ctp when no identity was asked for: well formed (above), an in-toto
 * statement about `imageDigest`, and a signature that verifies under its own certificate's key.
 * Throws MALFORMED_BUNDLE / SUBJECT_MISMATCH / INVALID_SIGNATURE.
 */
export function checkUnjudgedAttestation(raw: Buffer, imageDigest: string): void {
  const bundle = strictBundleFromJSON(parseBundleJson(raw));
  if (bundle.content.$case !== 'dsseEnvelope') throw new CtError('MALFORMED_BUNDLE', 'a message signature, not an in-toto attestation', { where: 'messageSignature' });
  const env = bundle.content.dsseEnvelope;
  checkSubject(inTotoStatement(env.payloadType, env.payload), imageDigest);
  const stackTraceLimit = Error.stackTraceLimit;
  let holds: boolean;
  try {
    Error.stackTraceLimit = 0;
    const entity = toSignedEntity(bundle);
    // A bundle naming a key (not a certificate) cannot be checked without that key: its shape is.
    if (entity.key.$case !== 'certificate') return;
    holds = entity.signature.verifySignature(createPublicKey({ key: entity.key.certificate.publicKey, format: 'der', type: 'spki' }));
  } catch (e) {
    throw new CtError('MALFORMED_BUNDLE', `bundle verification material does not parse: ${(e as Error).message.slice(0, 200)}`, { where: 'verificationMaterial' }, { cause: e });
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
  if (!holds) throw new CtError('INVALID_SIGNATURE', 'the DSSE signature does not verify under the certificate the bundle carries', { where: 'dsseEnvelope.signatures' });
}
