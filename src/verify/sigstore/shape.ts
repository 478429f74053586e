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
export function strictBundleFromJSON(json: unknown, depthChecked = false): Bundle {
  // Bundles handed over already parsed get the same depth limit as text (unreadKey recurses);
  // `depthChecked`: parsed here from text that passed assertJsonDepth.
  if (!depthChecked && valueDepthExceeds(json)) throw new CtError('MALFORMED_BUNDLE', `bundle: JSON nested deeper than ${MAX_JSON_DEPTH} levels`, { where: 'bundle', limit: MAX_JSON_DEPTH });
  let bundle: Bundle;
  try {
    bundle = bundleFromJSON(json);
  } catch (e) {
    throw new CtError('MALFORMED_BUNDLE', `not a valid Sigstore bundle: ${(e as Error).message.slice(0, 200)}`, { where: 'bundle' }, { cause: e });
  }
  const partlyRead = bytesPartlyRead(json, bundle, BUNDLE, '$');
  if (partlyRead) throw new CtError('MALFORMED_BUNDLE', `not a valid Sigstore bundle: ${partlyRead.slice(0, 200)} is not base64 read to its end`, { where: partlyRead.slice(0, 200) });
  // Nearly every bundle holds only keys the model writes back: checked without re-serialising it.
  if (allKeysWritten(json, bundle, BUNDLE)) return bundle;
  const extra = unreadBundleKey(json, bundle);
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

/**
 * How protobuf-specs' generated toJSON writes each field of the messages of a Bundle: under which
 * JSON key, from which part of the parsed message, and when (a default value is left out). 'bytes'
 * and 'repeated' are written when not empty, 'string' when not "", 'int64' when not "0", 'enum'
 * when not 0, 'message' when present; a oneof arm when it is the parsed case.
 */
type FieldRule =
  | { kind: 'bytes' | 'string' | 'int64' | 'enum' | 'message'; key: string; schema?: MessageRules }
  | { kind: 'repeated'; key: string; schema?: MessageRules }
  | { kind: 'oneof'; key: string; schema: MessageRules };
type MessageRules = Record<string, FieldRule>;

const HASH_OUTPUT: MessageRules = { algorithm: { kind: 'enum', key: 'algorithm' }, digest: { kind: 'bytes', key: 'digest' } };
const CERTIFICATE: MessageRules = { rawBytes: { kind: 'bytes', key: 'rawBytes' } };
const TLOG_ENTRY: MessageRules = {
  logIndex: { kind: 'int64', key: 'logIndex' },
  logId: { kind: 'message', key: 'logId', schema: { keyId: { kind: 'bytes', key: 'keyId' } } },
  kindVersion: { kind: 'message', key: 'kindVersion', schema: { kind: { kind: 'string', key: 'kind' }, version: { kind: 'string', key: 'version' } } },
  integratedTime: { kind: 'int64', key: 'integratedTime' },
  inclusionPromise: { kind: 'message', key: 'inclusionPromise', schema: { signedEntryTimestamp: { kind: 'bytes', key: 'signedEntryTimestamp' } } },
  inclusionProof: {
    kind: 'message', key: 'inclusionProof', schema: {
      logIndex: { kind: 'int64', key: 'logIndex' }, rootHash: { kind: 'bytes', key: 'rootHash' }, treeSize: { kind: 'int64', key: 'treeSize' },
      hashes: { kind: 'repeated', key: 'hashes' }, checkpoint: { kind: 'message', key: 'checkpoint', schema: { envelope: { kind: 'string', key: 'envelope' } } },
    },
  },
  canonicalizedBody: { kind: 'bytes', key: 'canonicalizedBody' },
};
const BUNDLE: MessageRules = {
  mediaType: { kind: 'string', key: 'mediaType' },
  verificationMaterial: {
    kind: 'message', key: 'verificationMaterial', schema: {
      publicKey: { kind: 'oneof', key: 'content', schema: { hint: { kind: 'string', key: 'hint' } } },
      x509CertificateChain: { kind: 'oneof', key: 'content', schema: { certificates: { kind: 'repeated', key: 'certificates', schema: CERTIFICATE } } },
      certificate: { kind: 'oneof', key: 'content', schema: CERTIFICATE },
      tlogEntries: { kind: 'repeated', key: 'tlogEntries', schema: TLOG_ENTRY },
      timestampVerificationData: {
        kind: 'message', key: 'timestampVerificationData',
        schema: { rfc3161Timestamps: { kind: 'repeated', key: 'rfc3161Timestamps', schema: { signedTimestamp: { kind: 'bytes', key: 'signedTimestamp' } } } },
      },
    },
  },
  messageSignature: { kind: 'oneof', key: 'content', schema: { messageDigest: { kind: 'message', key: 'messageDigest', schema: HASH_OUTPUT }, signature: { kind: 'bytes', key: 'signature' } } },
  dsseEnvelope: {
    kind: 'oneof', key: 'content', schema: {
      payload: { kind: 'bytes', key: 'payload' }, payloadType: { kind: 'string', key: 'payloadType' },
      signatures: { kind: 'repeated', key: 'signatures', schema: { sig: { kind: 'bytes', key: 'sig' }, keyid: { kind: 'string', key: 'keyid' } } },
    },
  },
};

/** The parsed value toJSON writes for `jsonKey` under `rule`, or undefined when it leaves the key out. */
function written(rule: FieldRule, jsonKey: string, model: Record<string, unknown>): unknown {
  const v = model[rule.key];
  switch (rule.kind) {
    case 'oneof': {
      const c = v as { $case?: string } | undefined;
      return c?.$case === jsonKey ? (c as Record<string, unknown>)[jsonKey] : undefined;
    }
    case 'bytes':
    case 'repeated':
      return (v as { length?: number } | undefined)?.length ? v : undefined;
    case 'string':
      return v !== '' ? v : undefined;
    case 'int64':
      return v !== '0' ? v : undefined;
    case 'enum':
      return v !== 0 ? v : undefined;
    case 'message':
      return v;
  }
}

/**
 * True when every key of `input`, at every level, is one the re-serialised model would hold: then
 * unreadKey(input, bundleToJSON(model)) finds nothing, and the model need not be re-serialised.
 * False means "not shown here" (a key toJSON would leave out, a value of an unexpected type): the
 * caller then runs that exact check. Scalars are accepted only as JSON strings and numbers (what
 * fromJSON reads and unreadKey does not descend into); test/sigstore/shape.test.ts compares both.
 */
function allKeysWritten(input: unknown, model: unknown, rules: MessageRules): boolean {
  if (input === null || typeof input !== 'object' || Array.isArray(input) || model === null || typeof model !== 'object') return false;
  for (const k in input) {
    if (!Object.hasOwn(input, k)) continue;
    const rule = Object.hasOwn(rules, k) ? rules[k] : undefined;
    if (!rule) return false;
    const sub = written(rule, k, model as Record<string, unknown>);
    if (sub === undefined) return false;
    const v = (input as Record<string, unknown>)[k];
    if (rule.kind === 'repeated') {
      if (!Array.isArray(v) || !Array.isArray(sub) || v.length !== sub.length) return false;
      for (let i = 0; i < v.length; i++) {
        if (rule.schema ? !allKeysWritten(v[i], sub[i], rule.schema) : typeof v[i] !== 'string') return false;
      }
    } else if (rule.schema) {
      if (!allKeysWritten(v, sub, rule.schema)) return false;
    } else if (typeof v !== 'string' && typeof v !== 'number') return false;
  }
  return true;
}

/**
 * Whether the base64 text `s` decodes to exactly `n` bytes with every character read. Buffer's
 * decoder (what protobuf-specs' fromJSON uses) skips characters outside the alphabet and stops at
 * the first '=', so `"<payload>=<anything>"` reads as the payload alone: text nobody signed that
 * still changes the bundle's digest. Allowed is what protobuf JSON allows for bytes: the standard or
 * URL-safe alphabet, with or without padding (sigstore-go's decoder, Go's base64, refuses the rest too).
 */
export function base64ReadToEnd(s: string, n: number): boolean {
  let end = s.length;
  let pad = 0;
  while (pad < 2 && end > 0 && s.charCodeAt(end - 1) === 61 /* = */) {
    end--;
    pad++;
  }
  if (pad > 0 && s.length % 4 !== 0) return false;
  const rest = end % 4;
  if (rest === 1) return false;
  // Any skipped character, or '=' before the end, leaves fewer bytes than the length promises.
  return n === (end >> 2) * 3 + (rest === 0 ? 0 : rest - 1);
}

/**
 * The path of the first bytes field (at any level) whose JSON text is not wholly read into the
 * parsed model (base64ReadToEnd), or undefined. Fields the model left empty are the unread-key
 * check's (a non-empty text that decodes to nothing is a key toJSON leaves out).
 */
function bytesPartlyRead(input: unknown, model: unknown, rules: MessageRules, path: string): string | undefined {
  if (input === null || typeof input !== 'object' || Array.isArray(input) || model === null || typeof model !== 'object') return undefined;
  for (const k in input) {
    if (!Object.hasOwn(input, k) || !Object.hasOwn(rules, k)) continue;
    const rule = rules[k];
    const sub = written(rule, k, model as Record<string, unknown>);
    if (sub === undefined) continue;
    const v = (input as Record<string, unknown>)[k];
    const at = `${path}.${k}`;
    if (rule.kind === 'bytes') {
      if (typeof v === 'string' && !base64ReadToEnd(v, (sub as Uint8Array).length)) return at;
    } else if (rule.kind === 'repeated') {
      if (!Array.isArray(v) || !Array.isArray(sub)) continue;
      for (let i = 0; i < v.length && i < sub.length; i++) {
        // The one repeated scalar of a Bundle is bytes (inclusionProof.hashes).
        const r = rule.schema ? bytesPartlyRead(v[i], sub[i], rule.schema, `${at}[${i}]`) : typeof v[i] === 'string' && !base64ReadToEnd(v[i] as string, (sub[i] as Uint8Array).length) ? `${at}[${i}]` : undefined;
        if (r) return r;
      }
    } else if (rule.schema) {
      const r = bytesPartlyRead(v, sub, rule.schema, at);
      if (r) return r;
    }
  }
  return undefined;
}

/** The unread-key check two ways, for test/sigstore/shape.test.ts: without and with re-serialising. */
export function bundleKeysAllWritten(json: unknown, bundle: Bundle): boolean {
  return allKeysWritten(json, bundle, BUNDLE);
}

export function unreadBundleKey(json: unknown, bundle: Bundle): string | undefined {
  return unreadKey(json, bundleToJSON(bundle), '$');
}

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
