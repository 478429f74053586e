/**
 * Signature stage: every signature of every envelope must verify over the standard DSSE PAE. The
 * legacy PAE (over the base64 text, as the upstream MVP producer signs) is tried only when the
 * caller allows it, and is then reported. An envelope without signatures is INVALID_SIGNATURE.
 */
import { verify } from 'node:crypto';
import { CtError } from '../../core/errors.js';
import { pae } from '../../attest/dsse.js';
import type { ParsedAttestation } from './parse.js';
import type { ResolvedSigner } from './keys.js';

export interface SignatureOutcome {
  /** True when at least one signature verified only over the legacy PAE. */
  legacyPae: boolean;
}

function verifies(data: Buffer, key: ResolvedSigner, sig: Buffer): boolean {
  try {
    return verify(null, data, key.publicKey, sig);
  } catch {
    return false; // wrong signature length or key type: not a valid signature
  }
}

export function checkSignatures(atts: ParsedAttestation[], signers: ResolvedSigner[][], allowLegacyPae: boolean): SignatureOutcome[] {
  return atts.map((a, i) => {
    const where = `$.attestations[${a.index}]`;
    if (a.envelope.signatures.length === 0) throw new CtError('INVALID_SIGNATURE', `${where}.signatures: empty; an attestation needs at least one signature`, { where });
    const standard = a.pae;
    let legacy: Buffer | undefined;
    let usedLegacy = false;
    a.envelope.signatures.forEach((s, j) => {
      const sig = a.sigs[j]; // decoded (and its canonical form checked) by parse.ts
      const key = signers[i][j];
      if (verifies(standard, key, sig)) return;
      if (allowLegacyPae) {
        legacy ??= pae(a.envelope.payloadType, Buffer.from(a.envelope.payload, 'utf8'));
        if (verifies(legacy, key, sig)) {
          usedLegacy = true;
          return;
        }
      }
      throw new CtError('INVALID_SIGNATURE', `${where}.signatures[${j}]: signature by ${s.keyid} does not verify${allowLegacyPae ? ' (standard or legacy PAE)' : ''}`, {
        where: `${where}.signatures[${j}]`,
        keyId: s.keyid,
      });
    });
    return { legacyPae: usedLegacy };
  });
}
