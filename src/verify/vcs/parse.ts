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
  if (!/^0\.\d+\.\d+$/.test(bundle.version)) throw malformed('$.version', `unsupported bundle version ${bundle.version} (0.x expected)`);

  const attestations = bundle.attestations.map((env, i): ParsedAttestation => {
    const where = `$.attestations[${i}]`;
    if (env.payloadType !== INTOTO_PAYLOAD_TYPE) throw malformed(`${where}.payloadType`, `must be ${INTOTO_PAYLOAD_TYPE}`);
    const payload = decodeBase64Strict(env.payload, `${where}.payload`);
    const statement = parseStatement(payload, `${where}.payload`);
    return { index: i, envelope: env, digest: attestationDigest(env), payload, statement };
  });

  const logEntries = bundle.logEntries.map((entry, i): ParsedLogEntry => {
    const where = `$.logEntries[${i}]`;
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
