/**
 * Stage 1 of VCS verification: untrusted bytes → an internal model. Everything after this stage
 * works on the model, never on raw JSON (the sigstore-js shape). Any failure is MALFORMED_BUNDLE
 * with the JSON path of the first bad field.
 */
import { createHash } from 'node:crypto';
import { CtError } from '../../core/errors.js';
import { MAX_JSON_DEPTH, jsonDepthExceeds } from '../../core/json.js';
import { INTOTO_PAYLOAD_TYPE, type DsseEnvelope } from '../../attest/dsse.js';
import { parseStatement, type Statement } from '../../attest/statement.js';
import { attestationDigest, type VcsBundle, type VcsLogEntry } from '../../attest/vcs-bundle.js';
import { schemaErrors, validatorFor } from './schemas.js';

export interface ParsedAttestation {
  index: number;
  envelope: DsseEnvelope;
  /** sha256 of the canonical envelope (SPEC §4). */
  digest: string;
  payload: Buffer;
  /** The standard DSSE PAE over the payload (INTOTO_PAYLOAD_TYPE); `payload` is its tail. */
  pae: Buffer;
  /** The signatures' bytes, decoded once (canonical base64 checked), in envelope order. */
  sigs: Buffer[];
  statement: Statement;
}

export interface ParsedLogEntry {
  index: number;
  entry: VcsLogEntry;
  /** The signed entry timestamp's bytes, decoded once (canonical base64 checked). */
  set: Buffer;
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

const NOT_CANONICAL = 'not base64 in canonical form (standard alphabet, padded, unused bits zero)';

/**
 * Standard base64 in its one canonical spelling. Base64 is malleable (the unused low bits of the
 * last character, optional padding): accepting several spellings of one signature would let a
 * bundle change without any check noticing.
 */
export function decodeCanonicalBase64(s: string, where: string): Buffer {
  const b = Buffer.from(s, 'base64');
  if (!isCanonicalBase64(s, b)) throw malformed(where, NOT_CANONICAL);
  return b;
}

/** "DSSEv1 <len> <type> " for the one payload type this verifier reads (checked before decoding). */
const PAE_TYPE_HEAD = `DSSEv1 ${Buffer.byteLength(INTOTO_PAYLOAD_TYPE)} ${INTOTO_PAYLOAD_TYPE} `;

/**
 * The payload decoded (canonical base64, as decodeCanonicalBase64) straight into the PAE the
 * signatures are checked over: one buffer, no second copy of the payload per attestation.
 */
export function decodePayloadPae(s: string, where: string): { pae: Buffer; payload: Buffer } {
  const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0;
  const expected = s.length % 4 === 0 ? (s.length / 4) * 3 - pad : -1;
  if (expected < 0) throw malformed(where, NOT_CANONICAL);
  const head = `${PAE_TYPE_HEAD}${expected} `;
  const pae = Buffer.allocUnsafe(head.length + expected);
  pae.write(head, 0, 'latin1');
  const written = expected ? pae.write(s, head.length, expected, 'base64') : 0;
  const payload = pae.subarray(head.length, head.length + written);
  // Fewer bytes than the length promises: a character outside the alphabet (the rest of the
  // buffer was never written and is not used).
  if (!isCanonicalBase64(s, payload)) throw malformed(where, NOT_CANONICAL);
  return { pae, payload };
}

const B64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/**
 * Whether `s` is the canonical base64 of `b` (= Buffer.from(s, 'base64')), i.e. whether
 * `b.toString('base64') === s`, without building the string again (payloads are kilobytes and
 * this runs for every envelope). Buffer's decoder skips characters outside the alphabet and stops
 * at '=': any such character leaves fewer bytes than the length and padding promise. It also
 * accepts the URL-safe '-' and '_', which are refused here. test/vcs/parse.test.ts checks this
 * against the re-encoding definition on random strings.
 */
export function isCanonicalBase64(s: string, b: Buffer): boolean {
  if (s.length % 4 !== 0) return false;
  const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0;
  if (b.length !== (s.length / 4) * 3 - pad) return false;
  if (s.includes('-') || s.includes('_')) return false;
  if (pad === 1 && B64_ALPHABET.indexOf(s[s.length - 2]) % 4 !== 0) return false;
  if (pad === 2 && B64_ALPHABET.indexOf(s[s.length - 3]) % 16 !== 0) return false;
  return true;
}

/** A proof hash: 64 lowercase hex digits, optionally `sha256:`-prefixed (the reference schema's pattern). */
function hashBytes(h: string, where: string): Buffer {
  const hex = h.startsWith('sha256:') ? h.slice(7) : h;
  const b = Buffer.from(hex, 'hex'); // stops at the first non-hex character: length tells
  // 32 bytes from 64 characters means all 64 were hex digits, so only their case is left to
  // check; toLowerCase of a lowercase ASCII string is a compare, where a regular expression cost
  // as much as the decoding (7 µs of a bundle's 54 hashes).
  if (b.length !== 32 || hex.length !== 64 || hex.toLowerCase() !== hex) throw malformed(where, 'not a SHA-256 hash (64 lowercase hex digits, optionally sha256:-prefixed)');
  return b;
}

/**
 * attestationDigest (sha256 of the JCS envelope) without the generic canonicalizer for the usual
 * shape: exactly payloadType, payload and signatures of {keyid, sig}, all strings. JCS serialises
 * strings exactly as JSON.stringify does (RFC 8785 §3.2.2.2) and these keys sort as written.
 * Any other shape goes through the canonicalizer; test/vcs/parse.test.ts checks both agree.
 * Precondition: `env.payload` is canonical base64 (decodeCanonicalBase64 passed).
 */
export function envelopeDigest(env: DsseEnvelope): string {
  const keys = Object.keys(env);
  const plain =
    keys.length === 3 &&
    env.signatures.every((s) => {
      const k = Object.keys(s);
      return k.length === 2 && typeof s.keyid === 'string' && typeof s.sig === 'string';
    });
  if (!plain) return attestationDigest(env);
  // Called after the payload was checked to be canonical base64 (ASCII): it needs no escaping,
  // and goes to the hash as it is instead of being joined into one more envelope-sized string.
  let rest = `","payloadType":${JSON.stringify(env.payloadType)},"signatures":[`;
  env.signatures.forEach((s, i) => {
    rest += `${i ? ',' : ''}{"keyid":${JSON.stringify(s.keyid)},"sig":${JSON.stringify(s.sig)}}`;
  });
  return `sha256:${createHash('sha256').update('{"payload":"', 'latin1').update(env.payload, 'latin1').update(`${rest}]}`, 'utf8').digest('hex')}`;
}

/** Parses a bundle from its bytes (or an already parsed JSON value). */
export function parseVcsBundle(input: Uint8Array | string | unknown): ParsedVcsBundle {
  let doc: unknown = input;
  if (typeof input === 'string' || input instanceof Uint8Array) {
    // A view, not Buffer.from(input): that copies every byte before decoding them.
    const text = typeof input === 'string' ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('utf8');
    if (jsonDepthExceeds(text)) throw new CtError('MALFORMED_BUNDLE', `bundle: JSON nested deeper than ${MAX_JSON_DEPTH} levels`, { where: '$', limit: MAX_JSON_DEPTH });
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw new CtError('MALFORMED_BUNDLE', `bundle: not JSON (${(e as Error).message})`, { where: '$' });
    }
  }
  const validate = validatorFor('attestation-bundle-verify');
  if (!validate(doc)) {
    const errs = schemaErrors(validate.errors);
    throw new CtError('MALFORMED_BUNDLE', `bundle: ${errs[0].path}: ${errs[0].message}`, { where: errs[0].path, errors: errs.slice(0, 20) });
  }
  const bundle = doc as VcsBundle;
  if (!SUPPORTED_VERSIONS.has(bundle.version)) throw malformed('$.version', `unsupported bundle version ${bundle.version} (this verifier reads ${[...SUPPORTED_VERSIONS].join(', ')})`);

  const attestations = bundle.attestations.map((env, i): ParsedAttestation => {
    const where = `$.attestations[${i}]`;
    if (env.payloadType !== INTOTO_PAYLOAD_TYPE) throw malformed(`${where}.payloadType`, `must be ${INTOTO_PAYLOAD_TYPE}`);
    const { pae, payload } = decodePayloadPae(env.payload, `${where}.payload`);
    const sigs = env.signatures.map((sg, j) => decodeCanonicalBase64(sg.sig, `${where}.signatures[${j}].sig`));
    const statement = parseStatement(payload, `${where}.payload`);
    return { index: i, envelope: env, digest: envelopeDigest(env), payload, pae, sigs, statement };
  });

  // Equal proof hashes decoded once, to one Buffer: entries logged together share most of their
  // paths, and logs.ts remembers interior nodes by the proof element's identity.
  const decoded = new Map<string, Buffer>();
  const proofHash = (h: string, where: string): Buffer => {
    let b = decoded.get(h);
    if (!b) decoded.set(h, (b = hashBytes(h, where)));
    return b;
  };
  const logEntries = bundle.logEntries.map((entry, i): ParsedLogEntry => {
    const where = `$.logEntries[${i}]`;
    const set = decodeCanonicalBase64(entry.signedEntryTimestamp, `${where}.signedEntryTimestamp`);
    const t = Date.parse(entry.integratedTime);
    if (!Number.isFinite(t)) throw malformed(`${where}.integratedTime`, 'not a date-time');
    return {
      index: i,
      entry,
      set,
      rootHash: hashBytes(entry.inclusionProof.rootHash, `${where}.inclusionProof.rootHash`),
      hashes: entry.inclusionProof.hashes.map((h, j) => proofHash(h, `${where}.inclusionProof.hashes[${j}]`)),
      integratedSeconds: Math.floor(t / 1000),
    };
  });
  return { bundle, attestations, logEntries };
}
