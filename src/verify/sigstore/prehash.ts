/**
 * ECDSA P-256 verification over a SHA-256 digest given as bytes (a "prehash"): what verifying a
 * message-signature bundle against `sha256:<hex>` instead of the file needs. Node's crypto always
 * hashes the data itself and offers no prehashed ECDSA verify, and no library in the tree does it,
 * so this is the textbook algorithm (SEC 1 §4.1.4) on BigInt. It handles public values only
 * (signature, digest, public key), so constant time is not a concern.
 */
import type { KeyObject } from 'node:crypto';
import { ASN1Obj } from '@sigstore/core';

const P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const A = P - 3n;
const B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;
const G: Point = [0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296n, 0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5n];

type Point = [bigint, bigint] | null; // null is the point at infinity

const mod = (a: bigint, m: bigint) => ((a % m) + m) % m;

function inv(a: bigint, m: bigint): bigint {
  let [r0, r1] = [mod(a, m), m];
  let [s0, s1] = [1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return mod(s0, m);
}

function add(p1: Point, p2: Point): Point {
  if (!p1) return p2;
  if (!p2) return p1;
  const [x1, y1] = p1;
  const [x2, y2] = p2;
  let l: bigint;
  if (x1 === x2) {
    if (mod(y1 + y2, P) === 0n) return null;
    l = mod((3n * x1 * x1 + A) * inv(2n * y1, P), P);
  } else {
    l = mod((y2 - y1) * inv(x2 - x1, P), P);
  }
  const x3 = mod(l * l - x1 - x2, P);
  return [x3, mod(l * (x1 - x3) - y1, P)];
}

function mul(k: bigint, pt: Point): Point {
  let r: Point = null;
  let q = pt;
  while (k > 0n) {
    if (k & 1n) r = add(r, q);
    q = add(q, q);
    k >>= 1n;
  }
  return r;
}

const big = (b: Buffer) => (b.length ? BigInt(`0x${b.toString('hex')}`) : 0n);

/** True when `signature` (DER) is a valid ECDSA signature by the P-256 `key` over `digest` (32 bytes). */
export function verifyP256Prehashed(digest: Buffer, signature: Buffer, key: KeyObject): boolean {
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1' || digest.length !== 32) return false;
  let r: bigint;
  let s: bigint;
  try {
    const seq = ASN1Obj.parseBuffer(signature as Buffer<ArrayBuffer>);
    if (seq.subs.length !== 2) return false;
    r = seq.subs[0].toInteger();
    s = seq.subs[1].toInteger();
  } catch {
    return false;
  }
  if (r <= 0n || r >= N || s <= 0n || s >= N) return false;
  const jwk = key.export({ format: 'jwk' });
  const q: Point = [big(Buffer.from(jwk.x as string, 'base64url')), big(Buffer.from(jwk.y as string, 'base64url'))];
  if (mod(q[1] * q[1] - (q[0] * q[0] * q[0] + A * q[0] + B), P) !== 0n) return false;
  const w = inv(s, N);
  const x = add(mul(mod(big(digest) * w, N), G), mul(mod(r * w, N), q));
  return x !== null && mod(x[0], N) === r;
}
