/**
 * Stage 1 of VCS verification: untrusted bytes → an internal model. Everything after this stage
 * works on the model, never on raw JSON (the sigstore-js shape). Any failure is MALFORMED_BUNDLE
 * with the JSON path of the first bad field.
 */
import { CtError } from '../../core/errors.js';
import { decodeBase64Strict, INTOTO_PAYLOAD_TYPE, type DsseEnvelope } from '../../attest/dsse.js';
import { parseStatement, type Statement } from '../../attest/statement.js';
import { attestationDigest, type VcsBundle, type VcsLogEntry } from '../../attest/vcs-bundle.js';
import { schemaErrors, validatorFor } from './schemas.js';

export interface ParsedAttestation {
  index: number;
  envelope: DsseEnvelope;
  /** sha256 of the canonical envelope (SPEC §4). */
  digest: string;
  payload: Buffer;
  statement: Statement;
}

export interface ParsedLogEntry {
  index: number;
  entry: VcsLogEntry;
  /** Proof material decoded once: root and path as 32-byte buffers. */
  rootHash: Buffer;
  hashes: Buffer[];
  /** integratedTime as Unix seconds, for the evidence. */
  integratedSeconds: number;
}

export interface ParsedVcsBundle {
  bundle: VcsBundle;
  attestations: ParsedAttestation[];
  logEntries: ParsedLogEntry[];
}

function malformed(where: string, what: string): CtError {
  return new CtError('MALFORMED_BUNDLE', `${where}: ${what}`, { where });
}

/** Bundle format versions this verifier reads; anything else is MALFORMED_BUNDLE rather than guessed at. */
const SUPPORTED_VERSIONS = new Set(['0.1.0']);

/**
 * Standard base64 in its one canonical spelling. Base64 is malleable (the unused low bits of the
 * last character, optional padding): accepting several spellings of one signature would let a
 * bundle change without any check noticing.
 */
export function decodeCanonicalBase64(s: string, where: string): Buffer {
  const b = decodeBase64Strict(s, where);
  if (b.toString('base64') !== s) throw malformed(where, 'base64 is not in canonical form (standard alphabet, padded, unused bits zero)');
  return b;
}

function hashBytes(h: string): Buffer {
  return Buffer.from(h.startsWith('sha256:') ? h.slice(7) : h, 'hex');
}

/** Parses a bundle from its bytes (or an already parsed JSON value). */
export function parseVcsBundle(input: Uint8Array | string | unknown): ParsedVcsBundle {
  let doc: unknown = input;
  if (typeof input === 'string' || input instanceof Uint8Array) {
    try {
      doc = JSON.parse(typeof input === 'string' ? input : Buffer.from(input).toString('utf8'));
    } catch (e) {
      throw new CtError('MALFORMED_BUNDLE', `bundle: not JSON (${(e as Error).message})`, { where: '$' });
    }
  }
  const validate = validatorFor('attestation-bundle');
  if (!validate(doc)) {
    const errs = schemaErrors(validate.errors);
    throw new CtError('MALFORMED_BUNDLE', `bundle: ${errs[0].path}: ${errs[0].message}`, { where: errs[0].path, errors: errs.slice(0, 20) });
  }
  const bundle = doc as VcsBundle;
  if (!SUPPORTED_VERSIONS.has(bundle.version)) throw malformed('$.version', `unsupported bundle version ${bundle.version} (this verifier reads ${[...SUPPORTED_VERSIONS].join(', ')})`);

  const attestations = bundle.attestations.map((env, i): ParsedAttestation => {
    const where = `$.attestations[${i}]`;
    if (env.payloadType !== INTOTO_PAYLOAD_TYPE) throw malformed(`${where}.payloadType`, `must be ${INTOTO_PAYLOAD_TYPE}`);
    const payload = decodeCanonicalBase64(env.payload, `${where}.payload`);
    env.signatures.forEach((sg, j) => decodeCanonicalBase64(sg.sig, `${where}.signatures[${j}].sig`));
    const statement = parseStatement(payload, `${where}.payload`);
    return { index: i, envelope: env, digest: attestationDigest(env), payload, statement };
  });

  const logEntries = bundle.logEntries.map((entry, i): ParsedLogEntry => {
    const where = `$.logEntries[${i}]`;
    decodeCanonicalBase64(entry.signedEntryTimestamp, `${where}.signedEntryTimestamp`);
    const t = Date.parse(entry.integratedTime);
    if (!Number.isFinite(t)) throw malformed(`${where}.integratedTime`, 'not a date-time');
    return {
      index: i,
      entry,
      rootHash: hashBytes(entry.inclusionProof.rootHash),
      hashes: entry.inclusionProof.hashes.map(hashBytes),
      integratedSeconds: Math.floor(t / 1000),
    };
  });
  return { bundle, attestations, logEntries };
}
