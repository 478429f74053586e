import { describe, it, expect } from '@jest/globals';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { verifyP256Prehashed } from '../../src/verify/sigstore/prehash.js';

describe('ECDSA P-256 over a prehash (digest-only message-signature verification)', () => {
  it('accepts what Node signs and refuses any change of digest, signature or key', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    for (let i = 0; i < 3; i++) {
      const data = Buffer.from(`message ${i}`);
      const digest = createHash('sha256').update(data).digest();
      const sig = sign('sha256', data, privateKey);
      expect(verifyP256Prehashed(digest, sig, publicKey)).toBe(true);
      const d2 = Buffer.from(digest);
      d2[i] ^= 1;
      expect(verifyP256Prehashed(d2, sig, publicKey)).toBe(false);
      const s2 = Buffer.from(sig);
      s2[s2.length - 1] ^= 1;
      expect(verifyP256Prehashed(digest, s2, publicKey)).toBe(false);
      expect(verifyP256Prehashed(digest, sig, other)).toBe(false);
    }
    const ed = generateKeyPairSync('ed25519').publicKey;
    expect(verifyP256Prehashed(Buffer.alloc(32), Buffer.from('3006020101020101', 'hex'), ed)).toBe(false);
    expect(verifyP256Prehashed(Buffer.alloc(32), Buffer.from('not der'), publicKey)).toBe(false);
  });
});
