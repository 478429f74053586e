/**
 * Keyless identity: what a Fulcio certificate says about its signer, and the policy it must meet.
 *
 * - issuer: exact match.
 * - subject (the SAN): exact, or a regular expression that must match the WHOLE SAN. sigstore-js and
 *   cosign match unanchored (`acme/app` accepts `evil-acme/app-x`); we wrap every pattern as
 *   `^(?:re)$`, run it on RE2 (linear time, RE2 syntax as cosign's Go; src/core/linear-regex.ts),
 *   and bound the input.
 * - claims: Fulcio's extensions 1.3.6.1.4.1.57264.1.8–1.22 are DER UTF8Strings and are decoded
 *   before comparing; the legacy 1.1–1.6 ones are raw bytes. Pinning repository / owner ids keeps a
 *   renamed or re-created repository from taking over an identity.
 */
import { ASN1Obj } from '@sigstore/core';
import { CtError } from '../../core/errors.js';
import { readNode } from './der.js';
import { linearRegex, type LinearRegex } from '../../core/linear-regex.js';

export { CLAIM_OIDS, LEGACY_CLAIM_OIDS, CLAIM_ALIASES, resolveClaimName, type ClaimName } from './claims.js';
import { CLAIM_OIDS, LEGACY_CLAIM_OIDS, resolveClaimName } from './claims.js';

export interface CertIdentity {
  subject: string | null;
  issuer: string | null;
  claims: Record<string, string>;
}

export interface IdentityPolicy {
  /** OIDC issuer, exact. */
  issuer: string;
  /** SAN, exact. */
  subject?: string;
  /** SAN pattern, always matched as `^(?:pattern)$`. */
  subjectRegExp?: string;
  /** Claim name (Fulcio name or alias) → exact value. */
  claims?: Record<string, string>;
}

const MAX_SUBJECT = 4096;

/**
 * DER UTF8String (tag 0x0c; PrintableString and IA5String too) → text; anything else is not a valid
 * claim and is left out. As @sigstore/core's ASN1Obj.parseBuffer reads it: the first element (bytes
 * after it are ignored), by tag number whatever its class. A primitive element is read here from
 * its header (readNode fails exactly where core's header parse throws); a constructed one, whose
 * children core also parses, is left to core.
 */
export function derString(value: Buffer): string | undefined {
  const n = readNode(value, 0, value.length);
  if (!n) return undefined;
  if ((n.tag & 0x20) === 0) {
    const number = n.tag & 0x1f;
    return number === 0x0c || number === 0x13 || number === 0x16 ? value.toString('utf8', n.content, n.end) : undefined;
  }
  try {
    const obj = ASN1Obj.parseBuffer(value as Buffer<ArrayBuffer>);
    if (obj.tag.number !== 0x0c && obj.tag.number !== 0x13 && obj.tag.number !== 0x16) return undefined;
    return obj.value.toString('utf8');
  } catch {
    return undefined;
  }
}

/** Structural, so certificates parsed by any @sigstore/core copy fit. */
export interface CertificateLike {
  subjectAltName: string | undefined;
  extension(oid: string): { value: Buffer } | undefined;
  /** @sigstore/core's parsed extensions (SEQUENCE { OID, [critical], OCTET STRING }). */
  extensions?: { subs: { value: Buffer; toOID(): string }[] }[];
}

/**
 * extension(oid) for every claim OID at once: core's extension() parses every extension's OID
 * again on each call (thirty claims × thirty extensions). The first extension with an OID wins, as
 * in core, and its value is the last element of the extension, as core's X509Extension reads it.
 */
function extensionValues(cert: CertificateLike): (oid: string) => Buffer | undefined {
  const list = cert.extensions;
  if (!list) return (oid) => cert.extension(oid)?.value;
  const byOid = new Map<string, Buffer>();
  for (const ext of list) {
    const oid = ext.subs[0].toOID();
    if (!byOid.has(oid)) byOid.set(oid, ext.subs[ext.subs.length - 1].value);
  }
  return (oid) => byOid.get(oid);
}

export function certIdentity(cert: CertificateLike): CertIdentity {
  return identityOf(cert.subjectAltName, extensionValues(cert));
}

/** The identity from a certificate's SAN and its extension values (the first extension with an OID wins). */
export function identityOf(subjectAltName: string | undefined, value: (oid: string) => Buffer | undefined): CertIdentity {
  const claims: Record<string, string> = {};
  for (const [name, oid] of Object.entries(CLAIM_OIDS)) {
    const ext = value(oid);
    const v = ext ? derString(ext) : undefined;
    if (v !== undefined) claims[name] = v;
  }
  for (const [name, oid] of Object.entries(LEGACY_CLAIM_OIDS)) {
    const ext = value(oid);
    if (ext) claims[name] = ext.toString('utf8');
  }
  return { subject: subjectAltName ?? null, issuer: claims.issuer ?? claims.legacyIssuer ?? null, claims };
}

/** Compiled patterns by source, as policies repeat them (bounded: patterns can come from API calls). */
const regexCache = new Map<string, LinearRegex>();
const REGEX_CACHE = 256;

/** Compiles a subject pattern anchored at both ends (RE2: no pattern can backtrack catastrophically). */
export function anchoredRegExp(pattern: string): LinearRegex {
  let re = regexCache.get(pattern);
  if (re) return re;
  try {
    re = linearRegex(`^(?:${pattern})$`);
  } catch (e) {
    throw new CtError('POLICY_INVALID', `identity pattern ${JSON.stringify(pattern.slice(0, 200))} is not a regular expression (RE2 syntax): ${(e as Error).message.slice(0, 200)}`, { pattern: pattern.slice(0, 200) }, { cause: e });
  }
  if (regexCache.size >= REGEX_CACHE) regexCache.clear();
  regexCache.set(pattern, re);
  return re;
}

/** Checks a policy is usable before any bundle is seen (bad patterns fail early, once). */
export function assertIdentityPolicy(p: IdentityPolicy): void {
  if (!p || typeof p.issuer !== 'string' || p.issuer === '') throw new CtError('POLICY_INVALID', 'identity policy: issuer is required (exact)', {});
  if (p.subject === undefined && p.subjectRegExp === undefined) throw new CtError('POLICY_INVALID', 'identity policy: subject or subjectRegExp is required', {});
  if (p.subjectRegExp !== undefined) anchoredRegExp(p.subjectRegExp);
  for (const k of Object.keys(p.claims ?? {})) resolveClaimName(k);
}

export function describePolicy(p: IdentityPolicy): string {
  const subj = p.subject !== undefined ? JSON.stringify(p.subject) : `matching /^(?:${p.subjectRegExp})$/`;
  const claims = Object.entries(p.claims ?? {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ');
  return `subject ${subj} from issuer ${JSON.stringify(p.issuer)}${claims ? ` with ${claims}` : ''}`;
}

/** Throws IDENTITY_MISMATCH naming the expected and the actual identity. */
export function checkIdentity(p: IdentityPolicy, actual: CertIdentity): void {
  const problems: string[] = [];
  if (actual.issuer !== p.issuer) problems.push(`issuer ${JSON.stringify(actual.issuer)} is not ${JSON.stringify(p.issuer)}`);
  const subject = actual.subject ?? '';
  if (p.subject !== undefined && subject !== p.subject) problems.push(`subject ${JSON.stringify(actual.subject)} is not ${JSON.stringify(p.subject)}`);
  if (p.subjectRegExp !== undefined && (subject.length > MAX_SUBJECT || !anchoredRegExp(p.subjectRegExp).test(subject))) {
    problems.push(`subject ${JSON.stringify(actual.subject)} does not match /^(?:${p.subjectRegExp})$/ as a whole`);
  }
  for (const [k, v] of Object.entries(p.claims ?? {})) {
    const name = resolveClaimName(k);
    if (actual.claims[name] !== v) problems.push(`claim ${name} is ${JSON.stringify(actual.claims[name] ?? null)}, not ${JSON.stringify(v)}`);
  }
  if (problems.length) {
    throw new CtError('IDENTITY_MISMATCH',
      `certificate identity mismatch: expected ${describePolicy(p)}; got subject ${JSON.stringify(actual.subject)} from issuer ${JSON.stringify(actual.issuer)} (${problems.join('; ')})`,
      { expected: p, actual });
  }
}
