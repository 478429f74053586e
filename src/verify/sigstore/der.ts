/**
 * A read-only DER walker over raw bytes (the leaf certificate, the RFC 3161 token), for the fast path
 * (fast-path.ts, leaf-cert.ts, tsa-token.ts): it finds byte ranges (the TBS, the extension list),
 * reads values as @sigstore/core's getters do, and says whether the bytes are exactly what
 * @sigstore/core's `toDER()` would write back after parsing them. Only then may raw bytes stand in
 * for `toDER()` (signatures, SCT pre-certificates, certificate equality) without changing any
 * verdict; anything else sends the bundle to the unmodified @sigstore/verify path.
 *
 * The walk mirrors @sigstore/core 3.2 `ASN1Obj.parseBuffer`: one-byte tags only (no universal 0),
 * lengths up to 6 bytes, no indefinite form, children of a constructed element tile it exactly, and
 * an OCTET STRING whose content happens to parse as DER is treated as constructed (core re-encodes
 * those children too). `toDER()` writes minimal lengths, so "canonical" = every re-encoded element
 * has a minimal length.
 */

export interface DerNode {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the content. */
  content: number;
  /** Offset just past the content. */
  end: number;
}

const MAX_DEPTH = 48;

function lengthBytes(len: number): number {
  if (len < 0x80) return 1;
  let n = 0;
  for (let v = len; v > 0; v = Math.floor(v / 256)) n++;
  return 1 + n;
}

/** The element at `pos` (bounded by `limit`), or null where core's parser would throw. */
export function readNode(b: Uint8Array, pos: number, limit: number): (DerNode & { minimal: boolean }) | null {
  if (pos + 2 > limit) return null;
  const tag = b[pos];
  if ((tag & 0x1f) === 0x1f || (tag & 0xdf) === 0) return null;
  const first = b[pos + 1];
  let len: number;
  let content: number;
  let minimal: boolean;
  if ((first & 0x80) === 0) {
    len = first;
    content = pos + 2;
    minimal = true;
  } else {
    const n = first & 0x7f;
    if (n > 6 || pos + 2 + n > limit) return null;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[pos + 2 + i];
    if (len === 0) return null;
    content = pos + 2 + n;
    minimal = lengthBytes(len) === n + 1;
  }
  const end = content + len;
  if (end > limit) return null;
  return { tag, start: pos, content, end, minimal };
}

/** Children of [from, to), or null if they do not tile the range as core requires. */
export function children(b: Uint8Array, from: number, to: number): DerNode[] | null {
  const out: DerNode[] = [];
  let p = from;
  while (p < to) {
    const n = readNode(b, p, to);
    if (!n) return null;
    out.push(n);
    p = n.end;
  }
  return p === to ? out : null;
}

type Walk = 'fail' | 'canonical' | 'noncanonical';

function walk(b: Uint8Array, n: DerNode & { minimal: boolean }, depth: number): Walk {
  if (depth > MAX_DEPTH) return 'noncanonical';
  const constructed = (n.tag & 0x20) !== 0;
  const octets = n.tag === 0x04;
  if (!constructed && !octets) return n.minimal ? 'canonical' : 'noncanonical';
  let p = n.content;
  let result: Walk = n.minimal ? 'canonical' : 'noncanonical';
  while (p < n.end) {
    const c = readNode(b, p, n.end);
    const w = c ? walk(b, c, depth + 1) : 'fail';
    if (w === 'fail') {
      // core: a constructed element that does not parse throws; an OCTET STRING stays primitive.
      return octets ? (n.minimal ? 'canonical' : 'noncanonical') : 'fail';
    }
    if (w === 'noncanonical') result = 'noncanonical';
    p = (c as DerNode).end;
  }
  // (An empty constructed element re-encodes from its value: identical bytes.)
  return result;
}

/** True when `der` is one element that core parses and re-encodes to exactly these bytes. */
export function isCanonicalDer(der: Uint8Array): boolean {
  const top = readNode(der, 0, der.length);
  return !!top && top.end === der.length && walk(der, top, 0) === 'canonical';
}

/** DER length prefix for `len` (minimal form, as core's encodeLength). */
export function encodeLength(len: number): Buffer {
  if (len < 0x80) return Buffer.from([len]);
  const bytes: number[] = [];
  for (let v = len; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export interface CertLayout {
  tbs: DerNode;
  /** subjectPublicKeyInfo: the TBS's seventh element, where core reads it. */
  spki: DerNode;
  /** The [3] element holding the extensions, its SEQUENCE and the extensions in it. */
  extensions?: { wrapper: DerNode; seq: DerNode; items: DerNode[] };
}

/** Where the TBS and the extensions lie in a canonical certificate (null if not laid out as expected). */
export function certLayout(der: Uint8Array): CertLayout | null {
  const top = readNode(der, 0, der.length);
  if (!top || top.tag !== 0x30) return null;
  const parts = children(der, top.content, top.end);
  if (!parts || parts.length < 1 || parts[0].tag !== 0x30) return null;
  const tbs = parts[0];
  const fields = children(der, tbs.content, tbs.end);
  if (!fields || fields.length < 7) return null;
  const spki = fields[6];
  // core: the first context-specific element numbered 3, whatever its constructed bit.
  const wrapper = fields.find((f) => (f.tag >> 6) === 2 && (f.tag & 0x1f) === 3);
  if (!wrapper) return { tbs, spki };
  const inner = wrapper.tag === 0xa3 ? children(der, wrapper.content, wrapper.end) : null;
  if (!inner || inner.length !== 1 || inner[0].tag !== 0x30) return null;
  const items = children(der, inner[0].content, inner[0].end);
  if (!items) return null;
  return { tbs, spki, extensions: { wrapper, seq: inner[0], items } };
}

/**
 * The TBS re-encoded without extension `index` (RFC 6962 §3.2 pre-certificate), as @sigstore/verify
 * builds it by splicing the parsed extension list and calling toDER(). Null when the list would be
 * left empty: core then re-encodes the original bytes, which only the slow path reproduces.
 */
export function tbsWithoutExtension(der: Uint8Array, layout: CertLayout, index: number): Buffer | null {
  const ext = layout.extensions;
  if (!ext || index < 0 || index >= ext.items.length || ext.items.length < 2) return null;
  const drop = ext.items[index];
  const buf = Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  const seqLen = ext.seq.end - ext.seq.content - (drop.end - drop.start);
  const seqHdr = Buffer.concat([Buffer.from([0x30]), encodeLength(seqLen)]);
  const wrapLen = seqHdr.length + seqLen;
  const wrapHdr = Buffer.concat([Buffer.from([ext.wrapper.tag]), encodeLength(wrapLen)]);
  const { tbs } = layout;
  const tbsLen = (tbs.end - tbs.content) - (ext.wrapper.end - ext.wrapper.start) + wrapHdr.length + wrapLen;
  return Buffer.concat([
    Buffer.from([0x30]), encodeLength(tbsLen),
    buf.subarray(tbs.content, ext.wrapper.start),
    wrapHdr, seqHdr,
    buf.subarray(ext.seq.content, drop.start), buf.subarray(drop.end, ext.seq.end),
    buf.subarray(ext.wrapper.end, tbs.end),
  ]);
}

// SubjectPublicKeyInfo prefixes of uncompressed EC points on P-256 and P-384 (RFC 5480).
const EC_SPKI: { prefix: Buffer; crv: string; size: number }[] = [
  { prefix: Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex'), crv: 'P-256', size: 32 },
  { prefix: Buffer.from('3076301006072a8648ce3d020106052b81040022036200', 'hex'), crv: 'P-384', size: 48 },
];

/**
 * A P-256/P-384 SubjectPublicKeyInfo as a JWK: OpenSSL imports the coordinates (checking the point
 * is on the curve) about twice as fast as it decodes the same key from DER. Null for any other key.
 */
export function ecSpkiJwk(spki: Uint8Array): { kty: 'EC'; crv: string; x: string; y: string } | null {
  const b = Buffer.from(spki.buffer, spki.byteOffset, spki.byteLength);
  for (const k of EC_SPKI) {
    if (b.length === k.prefix.length + 1 + 2 * k.size && b[k.prefix.length] === 0x04 && b.subarray(0, k.prefix.length).equals(k.prefix)) {
      const at = k.prefix.length + 1;
      return { kty: 'EC', crv: k.crv, x: b.subarray(at, at + k.size).toString('base64url'), y: b.subarray(at + k.size).toString('base64url') };
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Reading values exactly as @sigstore/core 3.2 reads them (asn1/obj.js, asn1/parse.js), for bytes
// isCanonicalDer() accepted: every decoder below returns what core's getter returns, and null
// where core's getter would throw (the caller then leaves the bundle to @sigstore/verify).

/** core's `subs`: a constructed element's children; an OCTET STRING's, when its content parses as DER. */
export function subsOf(b: Uint8Array, n: DerNode): DerNode[] {
  if ((n.tag & 0x20) !== 0) return children(b, n.content, n.end) ?? [];
  if (n.tag !== 0x04) return [];
  const out: DerNode[] = [];
  let p = n.content;
  while (p < n.end) {
    const c = readNode(b, p, n.end);
    // core tries the content as DER and keeps it primitive when any of it fails to parse.
    if (!c || walk(b, c, 0) === 'fail') return [];
    out.push(c);
    p = c.end;
  }
  return out;
}

const tagClass = (t: number) => t >> 6;
const tagNumber = (t: number) => t & 0x1f;
/** core's ASN1Tag.isContextSpecific(num). */
export const isContextTag = (t: number, num: number) => tagClass(t) === 2 && tagNumber(t) === num;
const isUniversal = (t: number, num: number) => tagClass(t) === 0 && tagNumber(t) === num;

/** A Buffer view (no copy) of a node's content: core's `value`. */
export function valueOf(b: Uint8Array, n: DerNode): Buffer {
  return Buffer.from(b.buffer, b.byteOffset + n.content, n.end - n.content);
}

/** A Buffer view of a whole node (header included): its toDER() for canonical bytes. */
export function rawOf(b: Uint8Array, n: DerNode): Buffer {
  return Buffer.from(b.buffer, b.byteOffset + n.start, n.end - n.start);
}

/** core's toOID() (parse.js parseOID, byte for byte), or null where it throws (not an OID tag). */
export function oidOf(b: Uint8Array, n: DerNode): string | null {
  // An empty OID: core reads it as "NaN.NaN"; null here (the caller leaves it to the library)
  // rather than reading the byte after the node.
  if (!isUniversal(n.tag, 0x06) || n.content >= n.end) return null;
  let pos = n.content;
  const end = n.end;
  let v = b[pos++];
  let oid = `${Math.floor(v / 40)}.${v % 40}`;
  let val = 0;
  for (; pos < end; ++pos) {
    v = b[pos];
    val = (val << 7) + (v & 0x7f);
    if ((v & 0x80) === 0) {
      oid += `.${val}`;
      val = 0;
    }
  }
  return oid;
}

const RE_TIME_SHORT_YEAR = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\.\d{3})?Z$/;
const RE_TIME_LONG_YEAR = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\.\d{3})?Z$/;

/** core's toDate() (UTCTime or GeneralizedTime, parse.js parseTime), or null where it throws. */
export function dateOf(b: Uint8Array, n: DerNode): Date | null {
  const short = isUniversal(n.tag, 0x17);
  if (!short && !isUniversal(n.tag, 0x18)) return null;
  const m = (short ? RE_TIME_SHORT_YEAR : RE_TIME_LONG_YEAR).exec(valueOf(b, n).toString('ascii'));
  if (!m) return null;
  if (short) {
    const year = Number(m[1]);
    m[1] = String(year + (year >= 50 ? 1900 : 2000));
  }
  return new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`);
}

/** core's toBoolean(), or null where it throws (not a BOOLEAN tag). */
export function booleanOf(b: Uint8Array, n: DerNode): boolean | null {
  if (!isUniversal(n.tag, 0x01)) return null;
  // parse.js parseBoolean: buf[0] !== 0 (an empty value reads as true).
  return n.content === n.end ? true : b[n.content] !== 0;
}
