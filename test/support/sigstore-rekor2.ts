/**
 * Rekor v2 (tiles) entries with proofs that verify, built from the mock log's key: the mock's own
 * v2 handler returns proofs that cannot verify (SPEC §3 trap 2), so it is never used. A v2 entry has
 * no SET and no integrated time: an inclusion proof against a signed checkpoint (C2SP signed note)
 * only. Real Rekor v2 records a DSSE entry with the hash of the PAE (SPEC §9), which is what
 * `payloadHashOf: 'pae'` produces.
 */
import { createHash, sign, type KeyObject } from 'node:crypto';
import { canonicalize } from '../../src/core/jcs.js';
import { pae } from '../../src/attest/dsse.js';

interface SerializedBundleLike {
  dsseEnvelope?: { payload: string; payloadType: string; signatures: { sig: string }[] };
  verificationMaterial: { certificate?: { rawBytes: string }; tlogEntries: unknown[] };
}

export function rekorV2DsseEntry(
  bundle: SerializedBundleLike,
  log: { privateKey: KeyObject; publicKey: KeyObject; origin: string },
  payloadHashOf: 'pae' | 'payload' | 'other' = 'pae',
): Record<string, unknown> {
  const env = bundle.dsseEnvelope;
  if (!env) throw new Error('not a DSSE bundle');
  const payload = Buffer.from(env.payload, 'base64');
  const hashed = payloadHashOf === 'pae' ? pae(env.payloadType, payload) : payloadHashOf === 'payload' ? payload : Buffer.from('something else');
  const body = {
    apiVersion: '0.0.2' as const,
    kind: 'dsse' as const,
    spec: {
      dsseV002: {
        payloadHash: { algorithm: 'SHA2_256', digest: createHash('sha256').update(hashed).digest('base64') },
        signatures: [{
          content: env.signatures[0].sig,
          verifier: { x509Certificate: { rawBytes: bundle.verificationMaterial.certificate?.rawBytes }, keyDetails: 'PKIX_ECDSA_P256_SHA_256' },
        }],
      },
    },
  };
  return rekorV2Entry(body, log);
}

export interface RekorV2Log { privateKey: KeyObject; publicKey: KeyObject; origin: string }

/** A TransparencyLogEntry (JSON) for a Rekor v2 body: a tree of one, signed checkpoint, no SET. */
export function rekorV2Entry(body: { kind: string; apiVersion: string }, log: RekorV2Log): Record<string, unknown> {
  const canonical = Buffer.from(canonicalize(body), 'utf8');
  const leaf = createHash('sha256').update(Buffer.from([0])).update(canonical).digest();
  const logId = createHash('sha256').update(log.publicKey.export({ type: 'spki', format: 'der' })).digest();
  // A tree of one entry: the leaf is the root, the proof is empty.
  const note = `${log.origin}\n1\n${leaf.toString('base64')}\n`;
  const sig = sign('sha256', Buffer.from(note), log.privateKey);
  const checkpoint = `${note}\n\u2014 ${log.origin} ${Buffer.concat([logId.subarray(0, 4), sig]).toString('base64')}\n`;
  return {
    logIndex: '0',
    logId: { keyId: logId.toString('base64') },
    kindVersion: { kind: body.kind, version: body.apiVersion },
    integratedTime: '0',
    inclusionProof: { logIndex: '0', rootHash: leaf.toString('base64'), treeSize: '1', hashes: [], checkpoint: { envelope: checkpoint } },
    canonicalizedBody: canonical.toString('base64'),
  };
}

/** What the mock's Rekor v2 endpoint logs for a CreateEntryRequest (JSON), shaped as Rekor v2 logs it. */
interface CreateEntryRequestJson {
  dsseRequestV002?: { envelope?: { payload: string; payloadType: string; signatures: { sig: string }[] }; verifiers: unknown[] };
  hashedRekordRequestV002?: { digest?: string; signature?: unknown };
}

export function rekorV2BodyFor(request: CreateEntryRequestJson): { kind: string; apiVersion: string } | null {
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('base64');
  const d = request.dsseRequestV002;
  if (d?.envelope) {
    const env = d.envelope;
    return {
      apiVersion: '0.0.2',
      kind: 'dsse',
      spec: {
        dsseV002: {
          payloadHash: { algorithm: 'SHA2_256', digest: sha(pae(env.payloadType, Buffer.from(env.payload, 'base64'))) },
          signatures: env.signatures.map((sg) => ({ content: sg.sig, verifier: d.verifiers[0] })),
        },
      },
    } as { kind: string; apiVersion: string };
  }
  const h = request.hashedRekordRequestV002;
  if (h?.digest) {
    // As Rekor v2 does: the digest algorithm is the one the key details name.
    const details = (h.signature as { verifier?: { keyDetails?: string } } | undefined)?.verifier?.keyDetails;
    return {
      apiVersion: '0.0.2',
      kind: 'hashedrekord',
      spec: { hashedRekordV002: { data: { algorithm: details === 'PKIX_ECDSA_P384_SHA_384' ? 'SHA2_384' : 'SHA2_256', digest: h.digest }, signature: h.signature } },
    } as { kind: string; apiVersion: string };
  }
  return null;
}

/** What of a hashedrekord 0.0.2 entry to change (each alone): the tests' mutations. */
export interface HashedRekordMutation { digest?: Buffer; signature?: Buffer; verifier?: Record<string, unknown> }

/**
 * The Rekor v2 entry of a DSSE bundle as deployed Rekor v2 logs it (hashedrekord 0.0.2 over the hash
 * of the PAE, the key's hash), optionally with one field changed, with a checkpoint that verifies.
 */
export function rekorV2HashedRekordEntry(
  bundle: SerializedBundleLike & { verificationMaterial: { publicKey?: unknown } },
  log: RekorV2Log,
  signer: { hash: 'sha256' | 'sha384'; publicKeyDer?: Buffer },
  mutate: HashedRekordMutation = {},
): Record<string, unknown> {
  const env = bundle.dsseEnvelope;
  if (!env) throw new Error('not a DSSE bundle');
  const digest = mutate.digest ?? createHash(signer.hash).update(pae(env.payloadType, Buffer.from(env.payload, 'base64'))).digest();
  const keyDetails = signer.hash === 'sha384' ? 'PKIX_ECDSA_P384_SHA_384' : 'PKIX_ECDSA_P256_SHA_256';
  const verifier = mutate.verifier ?? (signer.publicKeyDer
    ? { publicKey: { rawBytes: signer.publicKeyDer.toString('base64') }, keyDetails }
    : { x509Certificate: { rawBytes: bundle.verificationMaterial.certificate?.rawBytes }, keyDetails });
  const body = {
    apiVersion: '0.0.2' as const,
    kind: 'hashedrekord' as const,
    spec: {
      hashedRekordV002: {
        data: { algorithm: signer.hash === 'sha384' ? 'SHA2_384' : 'SHA2_256', digest: digest.toString('base64') },
        signature: { content: (mutate.signature ?? Buffer.from(env.signatures[0].sig, 'base64')).toString('base64'), verifier },
      },
    },
  };
  return rekorV2Entry(body, log);
}
