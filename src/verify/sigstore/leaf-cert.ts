/**
 * The signing (leaf) certificate of a keyless bundle, read from its raw DER for the fast path
 * (fast-path.ts) instead of @sigstore/core's X509Certificate: exactly the fields @sigstore/verify
 * and our identity check read — validity, issuer/subject, key ids, basic constraints, SAN, the
 * extension values the claims come from, the SCT list, the SPKI, the signature algorithm and value —
 * each as core's getter returns it. Only canonical DER (der.ts isCanonicalDer: core parses it and
 * re-encodes the same bytes) is read, and only in the shape RFC 5280 gives a certificate: anything
 * else (an extension that is not SEQUENCE { OID, [BOOLEAN,] OCTET STRING }, a getter core would
 * throw in, trailing bytes in the SCT list) answers null and the bundle takes @sigstore/verify's path.
 */
import { booleanOf, certLayout, children, dateOf, isCanonicalDer, isContextTag, oidOf, rawOf, subsOf, valueOf, type CertLayout, type DerNode } from './der.js';

const OID_SKI = '2.5.29.14';
const OID_SAN = '2.5.29.17';
const OID_BASIC_CONSTRAINTS = '2.5.29.19';
const OID_AKI = '2.5.29.35';
export const OID_SCT = '1.3.6.1.4.1.11129.2.4.2';

/** core's oid.js maps: RSA first, then ECDSA (X509Certificate.signatureAlgorithm). */
const SIGNATURE_ALGOS: ReadonlyMap<string, string> = new Map([
  ['1.2.840.113549.1.1.14', 'sha224'], ['1.2.840.113549.1.1.11', 'sha256'], ['1.2.840.113549.1.1.12', 'sha384'], ['1.2.840.113549.1.1.13', 'sha512'],
  ['1.2.840.10045.4.3.1', 'sha224'], ['1.2.840.10045.4.3.2', 'sha256'], ['1.2.840.10045.4.3.3', 'sha384'], ['1.2.840.10045.4.3.4', 'sha512'],
]);
export const ECDSA_SIGNATURE_ALGOS: ReadonlyMap<string, string> = new Map([...SIGNATURE_ALGOS].slice(4));
export const SHA2_HASH_ALGOS: ReadonlyMap<string, string> = new Map([
  ['2.16.840.1.101.3.4.2.1', 'sha256'], ['2.16.840.1.101.3.4.2.2', 'sha384'], ['2.16.840.1.101.3.4.2.3', 'sha512'],
]);

/** One SCT as core's SignedCertificateTimestamp.parse reads it (views into the certificate). */
export interface Sct {
  version: number;
  logID: Buffer;
  timestamp: Buffer;
  extensions: Buffer;
  hashAlgorithm: number;
  signature: Buffer;
}

export interface Extension {
  oid: string;
  /** The last element's content (core's X509Extension.value). */
  value: Buffer;
}

export interface LeafCert {
  der: Buffer;
  layout: CertLayout;
  /** The TBS as signed (its raw bytes are its toDER()). */
  tbs: Buffer;
  signatureAlgorithm: string | undefined;
  signatureValue: Buffer;
  issuer: Buffer;
  subject: Buffer;
  notBefore: Date;
  notAfter: Date;
  spki: Buffer;
  extensions: Extension[];
  /** Set iff the SubjectKeyIdentifier extension is present. */
  ski?: Buffer;
  hasAki: boolean;
  aki?: Buffer;
  isCA: boolean;
  /** core's subjectAltName: the first URI, else the first rfc822Name. */
  san: string | undefined;
  /** Index of the SCT extension in the list (-1: none) and its SCTs. */
  sctIndex: number;
  scts: Sct[];
}

/** The first extension with `oid` (core's findExtension) and its extnValue node. */
function find(exts: { oid: string; valueNode: DerNode }[], oid: string): DerNode | undefined {
  return exts.find((e) => e.oid === oid)?.valueNode;
}

/** The leaf, or null when it is not canonical DER laid out as a certificate whose getters all answer. */
export function parseLeaf(bytes: Uint8Array): LeafCert | null {
  if (!isCanonicalDer(bytes)) return null;
  const der = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const layout = certLayout(der);
  if (!layout) return null;
  const top = children(der, 0, der.length);
  const root = top && top[0].tag === 0x30 ? children(der, top[0].content, top[0].end) : null;
  if (!root || root.length !== 3 || root[1].tag !== 0x30 || root[2].tag !== 0x03) return null;
  const algNode = children(der, root[1].content, root[1].end)?.[0];
  const algOid = algNode && oidOf(der, algNode);
  if (!algOid) return null;
  const fields = children(der, layout.tbs.content, layout.tbs.end) as DerNode[];
  const [, , , issuer, validity, subject] = fields;
  if (issuer.tag !== 0x30 || subject.tag !== 0x30 || validity.tag !== 0x30) return null;
  const times = children(der, validity.content, validity.end);
  if (!times || times.length !== 2) return null;
  const notBefore = dateOf(der, times[0]);
  const notAfter = dateOf(der, times[1]);
  if (!notBefore || !notAfter) return null;

  const exts: { oid: string; valueNode: DerNode; value: Buffer }[] = [];
  for (const item of layout.extensions?.items ?? []) {
    const parts = item.tag === 0x30 ? children(der, item.content, item.end) : null;
    if (!parts || parts.length < 2 || parts.length > 3 || (parts.length === 3 && parts[1].tag !== 0x01)) return null;
    const oid = oidOf(der, parts[0]);
    const valueNode = parts[parts.length - 1];
    if (!oid || valueNode.tag !== 0x04) return null;
    exts.push({ oid, valueNode, value: valueOf(der, valueNode) });
  }

  const leaf: LeafCert = {
    der, layout, tbs: rawOf(der, layout.tbs), signatureAlgorithm: SIGNATURE_ALGOS.get(algOid),
    signatureValue: valueOf(der, root[2]).subarray(1),
    issuer: valueOf(der, issuer), subject: valueOf(der, subject), notBefore, notAfter, spki: rawOf(der, layout.spki),
    extensions: exts.map(({ oid, value }) => ({ oid, value })), hasAki: false, isCA: false, san: undefined, sctIndex: -1, scts: [],
  };

  const ski = find(exts, OID_SKI);
  if (ski) {
    const inner = subsOf(der, ski)[0];
    if (!inner) return null;
    leaf.ski = valueOf(der, inner);
  }
  const aki = find(exts, OID_AKI);
  if (aki) {
    const seq = subsOf(der, aki)[0];
    if (!seq) return null;
    leaf.hasAki = true;
    const id = subsOf(der, seq).find((n) => isContextTag(n.tag, 0));
    leaf.aki = id && valueOf(der, id);
  }
  const bc = find(exts, OID_BASIC_CONSTRAINTS);
  if (bc) {
    const seq = subsOf(der, bc)[0];
    if (!seq) return null;
    const first = subsOf(der, seq)[0];
    const ca = first ? booleanOf(der, first) : false;
    if (ca === null) return null;
    leaf.isCA = ca;
  }
  const san = find(exts, OID_SAN);
  if (san) {
    const seq = subsOf(der, san)[0];
    if (!seq) return null;
    const names = subsOf(der, seq);
    const name = (tag: number) => {
      const n = names.find((g) => isContextTag(g.tag, tag));
      return n && valueOf(der, n).toString('ascii');
    };
    leaf.san = name(6) || name(1);
  }
  leaf.sctIndex = exts.findIndex((e) => e.oid === OID_SCT);
  if (leaf.sctIndex >= 0) {
    const list = subsOf(der, exts[leaf.sctIndex].valueNode)[0];
    const scts = list && parseSctList(valueOf(der, list));
    if (!scts) return null;
    leaf.scts = scts;
  }
  return leaf;
}

/**
 * core's X509SCTExtension.signedCertificateTimestamps (TLS-encoded list of SCTs), or null where it
 * throws; bytes after the list (which core ignores) also answer null.
 */
export function parseSctList(buf: Buffer): Sct[] | null {
  if (buf.length < 2) return null;
  const end = buf.readUInt16BE(0) + 2;
  if (end !== buf.length) return null;
  const out: Sct[] = [];
  let p = 2;
  while (p < end) {
    if (p + 2 > end) return null;
    const len = buf.readUInt16BE(p);
    p += 2;
    if (p + len > end) return null;
    const sct = parseSct(buf.subarray(p, p + len));
    if (!sct) return null;
    out.push(sct);
    p += len;
  }
  return out;
}

/** core's SignedCertificateTimestamp.parse: the fields must fill the buffer exactly. */
function parseSct(s: Buffer): Sct | null {
  // version(1) logID(32) timestamp(8) extLen(2) ext hash(1) sig(1) sigLen(2) sig
  if (s.length < 47) return null;
  const extLen = s.readUInt16BE(41);
  let p = 43 + extLen;
  if (p + 4 > s.length) return null;
  const hashAlgorithm = s[p];
  const sigLen = s.readUInt16BE(p + 2);
  p += 4;
  if (p + sigLen !== s.length) return null;
  return {
    version: s[0], logID: s.subarray(1, 33), timestamp: s.subarray(33, 41), extensions: s.subarray(43, 43 + extLen), hashAlgorithm, signature: s.subarray(p),
  };
}

/** core's SignedCertificateTimestamp.algorithm. */
export function sctHash(sct: Sct): string {
  return ['none', 'md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512'][sct.hashAlgorithm] ?? 'unknown';
}

/** core's SignedCertificateTimestamp.datetime. */
export function sctDate(sct: Sct): Date {
  return new Date(Number(sct.timestamp.readBigInt64BE()));
}

/** The bytes an SCT signs (core's SignedCertificateTimestamp.verify), over the pre-certificate. */
export function sctSignedData(sct: Sct, preCert: Buffer): Buffer {
  // version, signature_type certificate_timestamp(0), timestamp, entry_type precert_entry(1)
  const head = Buffer.alloc(12);
  head[0] = sct.version;
  sct.timestamp.copy(head, 2);
  head.writeUInt16BE(1, 10);
  const tail = Buffer.alloc(2);
  tail.writeUInt16BE(sct.extensions.length, 0);
  return Buffer.concat([head, preCert, tail, sct.extensions]);
}
