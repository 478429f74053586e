/**
 * Who signed a deployment's bundle, in a line each, for the App page's history (the list never
 * reads the evidence itself: kilobytes per row). Bounded: at most 8 signers of 200 characters.
 */
interface Signer { kind?: string; keyId?: string; roles?: string[]; issuer?: string; subject?: string }

export function signerSummary(evidence: unknown): string[] {
  const attestations = (evidence as { attestations?: { signers?: Signer[] }[] } | null)?.attestations;
  const out = new Set<string>();
  for (const a of Array.isArray(attestations) ? attestations : []) {
    for (const s of Array.isArray(a?.signers) ? a.signers : []) {
      const line = s.subject ? `${s.subject} via ${s.issuer ?? 'an unknown issuer'}` : s.keyId ? `key ${s.keyId}${s.roles?.length ? ` (${s.roles.join(', ')})` : ''}` : String(s.kind ?? 'unknown');
      out.add(line.slice(0, 200));
    }
  }
  return [...out].slice(0, 8);
}
