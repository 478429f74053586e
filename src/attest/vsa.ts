/**
 * SLSA Verification Summary Attestations (https://slsa.dev/verification_summary/v1) of deploys:
 * the deploy server signs one, with its own key, for every deploy that succeeded — "this bundle
 * passed verification and the policy of environment E, and runs there". A later environment's
 * policy can require one (`requireVerifiedIn: [staging]`).
 *
 * Wire form: a DSSE envelope (in-toto v1 statement) serialised as canonical JSON (JCS). The
 * verifier accepts only that exact form, so that any byte changed in the file is rejected — not
 * only bytes the signature covers. Checks, in order: form → signature key (in the trust store,
 * role `deployers`, valid, not revoked) → signature → statement (predicate type, result PASSED)
 * → subject (the image, and the .ctp when asked) → environment.
 */
import { createHash, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { CtError } from '../core/errors.js';
import { canonicalize } from '../core/jcs.js';
import { findKey, isKeyRevoked, keyValidity, validityCode } from '../trust/store.js';
import type { TrustStore } from '../trust/types.js';
import { cachedPublicKey } from '../verify/vcs/keys.js';
import { assertEnvelope, decodeBase64Strict, INTOTO_PAYLOAD_TYPE, pae, type DsseEnvelope } from './dsse.js';
import { signStatement } from './sign.js';
import { assertStatement, buildStatement, type Statement, type Subject } from './statement.js';
import { NAME } from '../core/name.js';

export const VSA_PREDICATE = 'https://slsa.dev/verification_summary/v1';
export const DEPLOYERS_ROLE = 'deployers';
/** OCI artifactType of a VSA attached to an image (referrer, or the `sha256-<hex>` tag index). */
export const VSA_ARTIFACT_TYPE = 'application/vnd.cerro-torre.vsa.v1+json';
/** The policy URI names the environment whose policy was applied: `urn:cerro-torre:environment:<name>`. */
const ENV_URN = 'urn:cerro-torre:environment:';
export const MAX_VSA_BYTES = 64 * 1024;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

export interface DeployVsaFacts {
  /** Where the server verified it: its public URL or id. */
  verifierId: string;
  environment: string;
  imageDigest: string;
  bundleDigest?: string;
  /** Registry reference the server fetched (resourceUri). */
  reference: string;
  /** Digest of the policy set that allowed it. */
  policyDigest?: string;
  /** Digests of the attestations that were verified (inputAttestations). */
  inputAttestations?: string[];
  deploymentId?: string;
  time: Date;
}

export interface VerifiedVsa {
  environment: string;
  imageDigest: string;
  bundleDigest?: string;
  keyId: string;
  timeVerified: string;
  verifier: string;
  resourceUri: string;
}

const hexOf = (d: string) => d.slice('sha256:'.length);

export function buildDeployVsa(f: DeployVsaFacts): Statement {
  if (!NAME.test(f.environment)) throw new CtError('USAGE', `environment ${JSON.stringify(f.environment)} is not a valid name`, {});
  if (!DIGEST.test(f.imageDigest) || (f.bundleDigest !== undefined && !DIGEST.test(f.bundleDigest))) throw new CtError('USAGE', 'VSA subjects need sha256:<64 hex> digests', {});
  const subject: Subject[] = [{ name: f.reference.split('@')[0], digest: { sha256: hexOf(f.imageDigest) } }];
  if (f.bundleDigest) subject.push({ name: 'bundle.ctp', digest: { sha256: hexOf(f.bundleDigest) } });
  return buildStatement(subject, VSA_PREDICATE, {
    verifier: { id: f.verifierId },
    timeVerified: f.time.toISOString(),
    resourceUri: `oci://${f.reference}`,
    policy: { uri: `${ENV_URN}${f.environment}`, ...(f.policyDigest && DIGEST.test(f.policyDigest) ? { digest: { sha256: hexOf(f.policyDigest) } } : {}) },
    inputAttestations: (f.inputAttestations ?? []).filter((d) => DIGEST.test(d)).slice(0, 64).map((d) => ({ digest: { sha256: hexOf(d) } })),
    verificationResult: 'PASSED',
    verifiedLevels: ['CERRO_TORRE_DEPLOYED'],
    slsaVersion: '1.0',
    ...(f.deploymentId ? { cerroTorre: { deploymentId: f.deploymentId } } : {}),
  });
}

/** Signs a deploy VSA with the server's key; returns the canonical envelope bytes (the wire form). */
export function signDeployVsa(f: DeployVsaFacts, key: KeyObject): Buffer {
  return Buffer.from(canonicalize(signStatement(buildDeployVsa(f), key)), 'utf8');
}

export interface VsaExpectation {
  store: TrustStore;
  imageDigest: string;
  /** When given, the VSA must name this .ctp too. */
  bundleDigest?: string;
  /** When given, the VSA must be for this environment. */
  environment?: string;
  now?: Date;
}

function invalid(message: string): CtError {
  return new CtError('VSA_INVALID', message, {});
}

function parseWire(bytes: Uint8Array): DsseEnvelope {
  if (bytes.length > MAX_VSA_BYTES) throw invalid(`larger than ${MAX_VSA_BYTES} bytes`);
  const text = Buffer.from(bytes).toString('utf8');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw invalid(`not JSON: ${(e as Error).message.slice(0, 120)}`);
  }
  assertEnvelope(v, 'vsa');
  const extra = Object.keys(v).filter((k) => !['payloadType', 'payload', 'signatures'].includes(k));
  if (extra.length) throw invalid(`unknown envelope field ${extra[0].slice(0, 40)}`);
  if (canonicalize(v) !== text || !Buffer.from(text, 'utf8').equals(Buffer.from(bytes))) throw invalid('not in canonical (JCS) form: the file was changed after signing');
  if (v.payloadType !== INTOTO_PAYLOAD_TYPE) throw invalid(`payloadType ${v.payloadType.slice(0, 80)} is not ${INTOTO_PAYLOAD_TYPE}`);
  if (v.signatures.length === 0 || v.signatures.length > 8) throw new CtError('INVALID_SIGNATURE', 'the VSA carries no signature (or too many)', {});
  return v;
}

export function verifyDeployVsa(bytes: Uint8Array, x: VsaExpectation): VerifiedVsa {
  const env = parseWire(bytes);
  const payload = decodeBase64Strict(env.payload, 'vsa.payload');
  if (payload.toString('base64') !== env.payload) throw invalid('payload is not canonical base64');
  const now = x.now ?? new Date();
  let signer: string | undefined;
  for (const s of env.signatures) {
    const sig = decodeBase64Strict(s.sig, 'vsa.signatures.sig');
    if (sig.toString('base64') !== s.sig) throw invalid('signature is not canonical base64');
    const hit = findKey(x.store, s.keyid);
    if (!hit) throw new CtError('UNKNOWN_KEY', `VSA key ${s.keyid} is not in trust store ${x.store.id ?? ''}`.trim(), { keyId: s.keyid });
    if (!hit.roles.includes(DEPLOYERS_ROLE)) throw new CtError('VSA_NOT_DEPLOYER', `VSA key ${s.keyid} has roles ${hit.roles.join(', ')}, not ${DEPLOYERS_ROLE}: only a deploy server's key may sign deploy VSAs`, { keyId: s.keyid, roles: hit.roles });
    if (isKeyRevoked(x.store, s.keyid)) throw new CtError('REVOKED_KEY', `VSA key ${s.keyid} is revoked`, { keyId: s.keyid });
    const v = keyValidity(hit.key, now);
    if (v !== 'valid') throw new CtError(validityCode(v), `VSA key ${s.keyid} is ${v}`, { keyId: s.keyid });
    const key = cachedPublicKey(hit.key.publicKey, `trust store key ${s.keyid}`);
    if (!cryptoVerify(null, pae(env.payloadType, payload), key, sig)) throw new CtError('INVALID_SIGNATURE', `VSA signature by ${s.keyid} does not verify`, { keyId: s.keyid });
    signer = s.keyid;
  }
  return { ...statementFacts(payload, x), keyId: signer! };
}

/**
 * Whether `bytes` is a deploy VSA this server signed (`own`: its deployer key; the trust store
 * is not consulted) about `imageDigest` for `environment`: what may be deleted from a registry
 * as superseded. Never throws.
 */
export function isOwnDeployVsa(bytes: Uint8Array, own: { keyId: string; publicKey: KeyObject }, x: { imageDigest: string; environment: string }): boolean {
  try {
    const env = parseWire(bytes);
    const payload = decodeBase64Strict(env.payload, 'vsa.payload');
    if (payload.toString('base64') !== env.payload) return false;
    const ok = env.signatures.every((s) => s.keyid === own.keyId && cryptoVerify(null, pae(env.payloadType, payload), own.publicKey, decodeBase64Strict(s.sig, 'vsa.signatures.sig')));
    return ok && statementFacts(payload, x).environment === x.environment;
  } catch {
    return false;
  }
}

/** The checks of the signed statement (predicate, result, subjects, environment) and what it records. */
function statementFacts(payload: Buffer, x: Omit<VsaExpectation, 'store' | 'now'>): Omit<VerifiedVsa, 'keyId'> {
  let st: unknown;
  try {
    st = JSON.parse(payload.toString('utf8'));
  } catch {
    throw invalid('payload is not JSON');
  }
  assertStatement(st, 'vsa statement');
  if (st.predicateType !== VSA_PREDICATE) throw invalid(`predicateType ${String(st.predicateType).slice(0, 80)} is not ${VSA_PREDICATE}`);
  const p = st.predicate as { verificationResult?: unknown; policy?: { uri?: unknown }; timeVerified?: unknown; verifier?: { id?: unknown }; resourceUri?: unknown };
  if (p?.verificationResult !== 'PASSED') throw invalid(`verificationResult is ${String(p?.verificationResult).slice(0, 20)}, not PASSED`);
  const uri = typeof p.policy?.uri === 'string' ? p.policy.uri : '';
  const environment = uri.startsWith(ENV_URN) ? uri.slice(ENV_URN.length) : '';
  if (!NAME.test(environment)) throw invalid('policy.uri does not name an environment');
  const hexes = new Set(st.subject.map((s) => s.digest?.sha256));
  if (!hexes.has(hexOf(x.imageDigest))) throw new CtError('VSA_SUBJECT_MISMATCH', `the VSA is about ${[...hexes].map((h) => `sha256:${h}`).join(', ').slice(0, 300)}, not image ${x.imageDigest}`, { imageDigest: x.imageDigest });
  if (x.bundleDigest && !hexes.has(hexOf(x.bundleDigest))) throw new CtError('VSA_SUBJECT_MISMATCH', `the VSA does not name bundle ${x.bundleDigest}`, { bundleDigest: x.bundleDigest });
  if (x.environment !== undefined && environment !== x.environment) throw new CtError('VSA_ENVIRONMENT_MISMATCH', `the VSA records a deploy to ${environment}, not ${x.environment}`, { environment, expected: x.environment });
  const bundleSubject = st.subject.find((s) => s.name === 'bundle.ctp')?.digest?.sha256;
  return {
    environment,
    imageDigest: x.imageDigest,
    ...(bundleSubject ? { bundleDigest: `sha256:${bundleSubject}` } : {}),
    timeVerified: typeof p.timeVerified === 'string' ? p.timeVerified : '',
    verifier: typeof p.verifier?.id === 'string' ? p.verifier.id.slice(0, 256) : '',
    resourceUri: typeof p.resourceUri === 'string' ? p.resourceUri.slice(0, 512) : '',
  };
}

/** Environments in which verified VSAs show this bundle ran; VSAs that fail are skipped (reasons returned). */
export function verifiedEnvironments(vsas: readonly Uint8Array[], x: Omit<VsaExpectation, 'environment'>): { environments: string[]; rejected: { code: string; message: string }[] } {
  const envs = new Set<string>();
  const rejected: { code: string; message: string }[] = [];
  for (const b of vsas.slice(0, 64)) {
    try {
      envs.add(verifyDeployVsa(b, x).environment);
    } catch (e) {
      rejected.push({ code: e instanceof CtError ? e.code : 'VSA_INVALID', message: (e as Error).message.slice(0, 300) });
    }
  }
  return { environments: [...envs].sort(), rejected };
}

export function vsaDigest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}
