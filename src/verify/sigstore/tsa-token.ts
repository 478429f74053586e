/**
 * An RFC 3161 timestamp token read from its raw DER for the fast path (fast-path.ts), instead of
 * @sigstore/core's RFC3161Timestamp: the fields its getters and verify() read (content types,
 * TSTInfo genTime and message imprint, the signer's issuer and serial, the message-digest signed
 * attribute, the signature algorithm and value), each as core reads it, and verify() as a boolean.
 * Only canonical DER (der.ts) in the shape core navigates; anything else answers null and the
 * bundle takes @sigstore/verify's path.
 */
import { hash, verify as cryptoVerify, timingSafeEqual, type KeyObject } from 'node:crypto';
import { children, dateOf, isCanonicalDer, isContextTag, oidOf, rawOf, subsOf, valueOf, type DerNode } from './der.js';
import { ECDSA_SIGNATURE_ALGOS, SHA2_HASH_ALGOS } from './leaf-cert.js';

const OID_SIGNED_DATA = '1.2.840.113549.1.7.2';
const OID_TSTINFO = '1.2.840.113549.1.9.16.1.4';
const OID_MESSAGE_DIGEST = '1.2.840.113549.1.9.4';

export interface TsaToken {
  /** TSTInfo genTime (core's signingTime). */
  signingTime: Date;
  signerIssuer: Buffer;
  signerSerialNumber: Buffer;
  contentType: string;
  eContentType: string;
  imprintAlgorithm: string | undefined;
  imprint: Buffer;
  /** The TSTInfo as encoded (its toDER()). */
  tstInfo: Buffer;
  digestAlgorithm: string | undefined;
  /** The message-digest signed attribute's value; undefined when absent (core's verify throws). */
  messageDigest: Buffer | undefined;
  /** The signed attributes as encoded, tag [0] (signed with the tag of a SET). */
  signedAttrs: Buffer;
  signatureAlgorithm: string | undefined;
  signatureValue: Buffer;
}

function at(b: Uint8Array, n: DerNode | undefined, i: number): DerNode | undefined {
  return n && subsOf(b, n)[i];
}

/** The token, or null when it is not canonical DER core reads without throwing in any getter verify() uses. */
export function parseTsaToken(bytes: Uint8Array): TsaToken | null {
  if (!isCanonicalDer(bytes)) return null;
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const root = children(b, 0, b.length)?.[0];
  if (!root || root.tag !== 0x30) return null;
  // TimeStampResp { status, timeStampToken ContentInfo { contentType, [0] SignedData } }
  const token = at(b, root, 1);
  if (!token) return null;
  const tokenSubs = subsOf(b, token);
  const contentType = tokenSubs[0] && oidOf(b, tokenSubs[0]);
  const sd = at(b, tokenSubs.find((n) => isContextTag(n.tag, 0)), 0);
  if (!contentType || !sd) return null;
  const sdSubs = subsOf(b, sd);
  const encap = sdSubs[2];
  const eType = at(b, encap, 0);
  const eContentType = eType && oidOf(b, eType);
  // eContent [0] EXPLICIT OCTET STRING whose content is the TSTInfo.
  const tst = at(b, at(b, at(b, encap, 1), 0), 0);
  if (!eContentType || !tst) return null;
  const tstSubs = subsOf(b, tst);
  const signingTime = tstSubs[4] && dateOf(b, tstSubs[4]);
  const imprint = tstSubs[2];
  const imprintOid = at(b, at(b, imprint, 0), 0);
  const imprintAlg = imprintOid && oidOf(b, imprintOid);
  const hashed = at(b, imprint, 1);
  if (!signingTime || !imprintAlg || !hashed) return null;

  const signerInfo = at(b, sdSubs[sdSubs.length - 1], 0);
  if (!signerInfo) return null;
  const si = subsOf(b, signerInfo);
  const sidIssuer = at(b, si[1], 0);
  const sidSerial = at(b, si[1], 1);
  const digestOid = at(b, si[2], 0);
  const digestAlg = digestOid && oidOf(b, digestOid);
  const sigOid = at(b, si[4], 0);
  const sigAlg = sigOid && oidOf(b, sigOid);
  const signedAttrs = si.find((n) => isContextTag(n.tag, 0));
  if (!sidIssuer || !sidSerial || !digestAlg || !sigAlg || !si[5] || !signedAttrs) return null;
  // core: signedAttrs.subs.find((a) => a.subs[0].tag.isOID() && a.subs[0].toOID() === messageDigest)
  let messageDigest: Buffer | undefined;
  for (const attr of subsOf(b, signedAttrs)) {
    const first = at(b, attr, 0);
    if (!first) return null;
    if (oidOf(b, first) === OID_MESSAGE_DIGEST) {
      const v = at(b, at(b, attr, 1), 0);
      if (!v) return null;
      messageDigest = valueOf(b, v);
      break;
    }
  }
  return {
    signingTime, signerIssuer: valueOf(b, sidIssuer), signerSerialNumber: valueOf(b, sidSerial), contentType, eContentType,
    imprintAlgorithm: SHA2_HASH_ALGOS.get(imprintAlg), imprint: valueOf(b, hashed), tstInfo: rawOf(b, tst),
    digestAlgorithm: SHA2_HASH_ALGOS.get(digestAlg), messageDigest, signedAttrs: rawOf(b, signedAttrs),
    signatureAlgorithm: ECDSA_SIGNATURE_ALGOS.get(sigAlg), signatureValue: valueOf(b, si[5]),
  };
}

function equal(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** core's RFC3161Timestamp.verify(data, key), true where it does not throw. */
export function tsaTokenVerifies(t: TsaToken, data: Buffer, key: KeyObject): boolean {
  if (t.contentType !== OID_SIGNED_DATA || t.eContentType !== OID_TSTINFO) return false;
  if (!t.imprintAlgorithm || !t.digestAlgorithm || !t.messageDigest) return false;
  if (!equal(hash(t.imprintAlgorithm, data, 'buffer'), t.imprint)) return false;
  if (!equal(hash(t.digestAlgorithm, t.tstInfo, 'buffer'), t.messageDigest)) return false;
  const signed = Buffer.from(t.signedAttrs);
  signed[0] = 0x31;
  try {
    return cryptoVerify(t.signatureAlgorithm, signed, key, t.signatureValue);
  } catch {
    return false;
  }
}
