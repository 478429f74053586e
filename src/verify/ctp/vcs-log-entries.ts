/**
 * `attestations/vcs-log-entries.json` (docs/ci.md): the VCS transparency-log entries of keyless
 * (Sigstore) attestations, which a Sigstore bundle has no place for. Like every file under
 * `attestations/` it is exempt from coverage because its content is verified cryptographically,
 * so nothing in it may pass unverified: the document must parse exactly, every group must name a
 * Sigstore attestation of this .ctp by its digest, and every entry of a trusted log must prove
 * that attestation (SET + inclusion proof against the trust store's log key) or the bundle is
 * rejected (LOG_PROOF_INVALID, integrity). Entries of logs the trust store does not list are
 * skipped with a warning and never count, as in VCS bundles (SPEC §4).
 *
 * The entry a log recorded is rebuilt from the Sigstore bundle's DSSE envelope exactly as for a
 * VCS bundle (SPEC §4): attestationDigest = sha256 of the JCS envelope (the digest the Sigstore
 * verifier reports), subjectDigest = the image digest, predicateType from the statement,
 * timestamp = integratedTime. Verified entries are added to the Sigstore attestation of the same
 * digest, so the combiner counts distinct operators across Rekor and the VCS logs (SPEC §6).
 * The proofs are checked whether or not the Sigstore attestation itself was verified (no identity
 * policy given): junk is rejected either way, and entries only count for a verified attestation.
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { bundleFromJSON, type Bundle } from '@sigstore/bundle';
import { CtError } from '../../core/errors.js';
import { ownEntry } from '../../trust/store.js';
import { MAX_JSON_DEPTH, jsonDepthExceeds } from '../../core/json.js';
import { INTOTO_PAYLOAD_TYPE } from '../../attest/dsse.js';
import { parseStatement } from '../../attest/statement.js';
import { attestationEntryBytes, type VcsLogEntry } from '../../attest/vcs-bundle.js';
import { isRfc3339 } from '../../tlog/entry.js';
import { verifyLogEntryRecord } from '../../tlog/record.js';
import type { CtpArchive } from '../../bundle/archive.js';
import type { TrustStore } from '../../trust/types.js';
import type { VerifiedAttestation, VerifiedLogEntry } from '../evidence.js';
import type { VerifierResult } from '../report.js';
import { sigstoreEnvelopeDigest } from '../sigstore/verifier.js';
import { schemaErrors } from '../vcs/schemas.js';
import { isCanonicalBase64 } from '../vcs/parse.js';
import { cachedPublicKey } from '../vcs/keys.js';

export { VCS_LOG_ENTRIES_PATH } from './vcs-log-entries-path.js';
import { VCS_LOG_ENTRIES_PATH } from './vcs-log-entries-path.js';
export const VCS_LOG_ENTRIES_MEDIA_TYPE = 'application/vnd.cerro-torre.vcs-log-entries+json';
const SUPPORTED_VERSIONS = new Set(['0.1.0']);

export interface VcsLogEntriesDocument {
  mediaType: typeof VCS_LOG_ENTRIES_MEDIA_TYPE;
  version: string;
  imageDigest: string;
  attestations: { attestation: string; attestationDigest: string; predicateType: string; logEntries: VcsLogEntry[] }[];
}

const DIGEST = '^sha256:[a-f0-9]{64}$';
const HASH = '^[a-f0-9]{64}$|^sha256:[a-f0-9]{64}$';

// Exactly the shape the build action writes (actions/build/sign-keyless.ts); nothing else.
const schema = {
  type: 'object',
  additionalProperties: false,
  required: ['mediaType', 'version', 'imageDigest', 'attestations'],
  properties: {
    mediaType: { const: VCS_LOG_ENTRIES_MEDIA_TYPE },
    version: { type: 'string' },
    imageDigest: { type: 'string', pattern: DIGEST },
    attestations: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['attestation', 'attestationDigest', 'predicateType', 'logEntries'],
        properties: {
          attestation: { type: 'string', pattern: '^attestations/[^/]+\\.sigstore\\.json$' },
          attestationDigest: { type: 'string', pattern: DIGEST },
          predicateType: { type: 'string', minLength: 1 },
          logEntries: {
            type: 'array',
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['logId', 'logIndex', 'integratedTime', 'inclusionProof', 'signedEntryTimestamp'],
              properties: {
                logId: { type: 'string', minLength: 1 },
                logIndex: { type: 'integer', minimum: 0 },
                integratedTime: { type: 'string' },
                inclusionProof: {
                  type: 'object',
                  additionalProperties: false,
                  required: ['logIndex', 'rootHash', 'treeSize', 'hashes'],
                  properties: {
                    logIndex: { type: 'integer', minimum: 0 },
                    rootHash: { type: 'string', pattern: HASH },
                    treeSize: { type: 'integer', minimum: 1 },
                    hashes: { type: 'array', maxItems: 64, items: { type: 'string', pattern: HASH } },
                  },
                },
                signedEntryTimestamp: { type: 'string' },
              },
            },
          },
        },
      },
    },
  },
};

let validator: ValidateFunction | undefined;

function malformed(where: string, what: string): CtError {
  return new CtError('MALFORMED_BUNDLE', `${VCS_LOG_ENTRIES_PATH}: ${where}: ${what}`, { path: VCS_LOG_ENTRIES_PATH, where });
}

/** Parses the document; MALFORMED_BUNDLE with the JSON path of the first bad field. */
export function parseVcsLogEntries(data: Buffer): VcsLogEntriesDocument {
  let doc: unknown;
  if (jsonDepthExceeds(data)) throw malformed('$', `JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
  try {
    doc = JSON.parse(data.toString('utf8'));
  } catch (e) {
    throw malformed('$', `not JSON (${(e as Error).message})`);
  }
  validator ??= new Ajv2020({ allErrors: false, strict: false }).compile(schema);
  if (!validator(doc)) {
    const [first] = schemaErrors(validator.errors);
    throw malformed(first.path, first.message);
  }
  const d = doc as VcsLogEntriesDocument;
  if (!SUPPORTED_VERSIONS.has(d.version)) throw malformed('$.version', `unsupported version ${d.version} (this verifier reads ${[...SUPPORTED_VERSIONS].join(', ')})`);
  const named = new Set<string>();
  d.attestations.forEach((g, i) => {
    if (named.has(g.attestation)) throw malformed(`$.attestations[${i}].attestation`, `${g.attestation} is listed twice`);
    named.add(g.attestation);
    const logs = new Set<string>();
    g.logEntries.forEach((e, j) => {
      const where = `$.attestations[${i}].logEntries[${j}]`;
      if (!isRfc3339(e.integratedTime)) throw malformed(`${where}.integratedTime`, 'not an RFC 3339 date-time');
      // One spelling per signature: lenient base64 would let the SET change unnoticed.
      if (!isCanonicalBase64(e.signedEntryTimestamp, Buffer.from(e.signedEntryTimestamp, 'base64'))) {
        throw malformed(`${where}.signedEntryTimestamp`, 'not base64 in canonical form (standard alphabet, padded, unused bits zero)');
      }
      if (logs.has(e.logId)) throw malformed(`${where}.logId`, `a second entry of log ${e.logId} for the same attestation`);
      logs.add(e.logId);
    });
  });
  return d;
}

/** What the log entries must prove: the attestation a Sigstore bundle of the .ctp carries. */
interface SigstoreEnvelopeFacts {
  digest: string;
  predicateType: string;
}

function envelopeFacts(archive: CtpArchive, path: string, where: string): SigstoreEnvelopeFacts {
  if (!archive.entries.has(path)) throw malformed(where, `${path} is not in the bundle`);
  let bundle: Bundle;
  try {
    bundle = bundleFromJSON(JSON.parse(archive.file(path).toString('utf8')));
  } catch (e) {
    throw new CtError('MALFORMED_BUNDLE', `${path}: not a valid Sigstore bundle: ${(e as Error).message}`, { path }, { cause: e });
  }
  if (bundle.content.$case !== 'dsseEnvelope') throw new CtError('MALFORMED_BUNDLE', `${path}: a message signature, not an in-toto attestation`, { path });
  const env = bundle.content.dsseEnvelope;
  if (env.payloadType !== INTOTO_PAYLOAD_TYPE) throw new CtError('MALFORMED_BUNDLE', `${path}: payloadType must be ${INTOTO_PAYLOAD_TYPE}`, { path });
  const statement = parseStatement(env.payload, `${path}: dsseEnvelope.payload`);
  return { digest: sigstoreEnvelopeDigest(bundle), predicateType: statement.predicateType };
}

export interface VcsLogEntriesOutcome {
  /** The verifier results with the verified entries added to their Sigstore attestations (copies: results may be cached objects). */
  results: VerifierResult[];
  /** Entries whose proofs verified, per attestation digest. */
  verified: number;
  warnings: string[];
}

/**
 * Verifies `attestations/vcs-log-entries.json` against the .ctp and the trust store, and adds the
 * verified entries to the Sigstore attestations of the same digest. Throws CtError:
 * MALFORMED_BUNDLE (shape, unknown attestation file), SUBJECT_MISMATCH (another image),
 * LOG_PROOF_INVALID (an entry of a trusted log that does not prove the named attestation).
 */
export function applyVcsLogEntries(archive: CtpArchive, imageDigest: string, store: TrustStore, results: VerifierResult[]): VcsLogEntriesOutcome {
  const doc = parseVcsLogEntries(archive.file(VCS_LOG_ENTRIES_PATH));
  if (doc.imageDigest !== imageDigest) {
    throw new CtError('SUBJECT_MISMATCH', `${VCS_LOG_ENTRIES_PATH}: entries recorded for image ${doc.imageDigest}, the bundle's image is ${imageDigest}`, {
      path: VCS_LOG_ENTRIES_PATH,
      expected: imageDigest,
      actual: doc.imageDigest,
    });
  }
  const warnings: string[] = [];
  const added = new Map<string, VerifiedLogEntry[]>();
  let verified = 0;
  doc.attestations.forEach((g, i) => {
    const gw = `$.attestations[${i}]`;
    const facts = envelopeFacts(archive, g.attestation, `${gw}.attestation`);
    // The group must describe the attestation the file holds; entries recorded for another
    // envelope (a re-signed or swapped bundle) prove nothing about this one.
    if (g.attestationDigest !== facts.digest || g.predicateType !== facts.predicateType) {
      throw new CtError('LOG_PROOF_INVALID', `${VCS_LOG_ENTRIES_PATH}: ${gw}: entries recorded for attestation ${g.attestationDigest} (${g.predicateType}); ${g.attestation} holds ${facts.digest} (${facts.predicateType})`, {
        path: VCS_LOG_ENTRIES_PATH,
        where: gw,
        expected: facts.digest,
        actual: g.attestationDigest,
      });
    }
    g.logEntries.forEach((e, j) => {
      const where = `${gw}.logEntries[${j}]`;
      const log = ownEntry(store.logs, e.logId);
      if (!log) {
        warnings.push(`${VCS_LOG_ENTRIES_PATH}: ${where}: log ${e.logId} is not in the trust store; entry not counted`);
        return;
      }
      const bytes = attestationEntryBytes(facts.digest, imageDigest, facts.predicateType, e.integratedTime);
      const check = verifyLogEntryRecord(e, bytes, { operator: log.operator, publicKey: cachedPublicKey(log.publicKey, `trust store log ${e.logId}`) });
      if (!check.ok) {
        throw new CtError('LOG_PROOF_INVALID', `${VCS_LOG_ENTRIES_PATH}: ${where} (${g.attestation}): ${check.message}`, {
          path: VCS_LOG_ENTRIES_PATH,
          where,
          logId: e.logId,
          logIndex: e.logIndex,
        });
      }
      const list = added.get(facts.digest) ?? [];
      list.push({ logId: e.logId, operator: log.operator, logIndex: e.logIndex, integratedTime: Math.floor(Date.parse(e.integratedTime) / 1000), kind: 'vcs' });
      added.set(facts.digest, list);
      verified++;
    });
  });
  const withEntries = (a: VerifiedAttestation): VerifiedAttestation => {
    const more = a.source === 'sigstore' ? added.get(a.digest) : undefined;
    if (!more) return a;
    return { ...a, logEntries: [...a.logEntries, ...more], logOperators: [...new Set([...a.logOperators, ...more.map((m) => m.operator)])].sort() };
  };
  return { results: results.map((r) => ({ ...r, attestations: r.attestations.map(withEntries) })), verified, warnings };
}
