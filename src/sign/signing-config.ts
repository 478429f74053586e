/**
 * Which Fulcio, Rekor and TSA a signer talks to: explicit URLs, a Sigstore SigningConfig file
 * (`application/vnd.dev.sigstore.signingconfig.v0.2+json`), or the public-good / staging defaults.
 */
import { CtError } from '../core/errors.js';

export const PUBLIC_GOOD = { fulcioURL: 'https://fulcio.sigstore.dev', rekorURL: 'https://rekor.sigstore.dev' } as const;
export const STAGING = { fulcioURL: 'https://fulcio.sigstage.dev', rekorURL: 'https://rekor.sigstage.dev' } as const;

export interface ServiceUrls {
  fulcioURL: string;
  rekorURL?: string;
  /** Rekor API major version: 1 (entries with SET and proof) or 2 (tiles; needs ≥ 20 s timeouts). */
  rekorApiVersion: 1 | 2;
  tsaURL?: string;
}

interface Service { url?: string; majorApiVersion?: number; validFor?: { start?: string; end?: string } }

/** Picks the first service of each kind valid now with an API version we speak. */
export function urlsFromSigningConfig(config: unknown, now = new Date()): ServiceUrls {
  const c = config as { mediaType?: string; caUrls?: Service[]; rekorTlogUrls?: Service[]; tsaUrls?: Service[] } | null;
  if (!c || typeof c !== 'object' || typeof c.mediaType !== 'string' || !c.mediaType.startsWith('application/vnd.dev.sigstore.signingconfig')) {
    throw new CtError('USAGE', 'signing config: not a Sigstore SigningConfig (mediaType application/vnd.dev.sigstore.signingconfig.v0.2+json)', { where: 'signingConfig' });
  }
  const valid = (s: Service) => typeof s?.url === 'string'
    && (!s.validFor?.start || new Date(s.validFor.start) <= now)
    && (!s.validFor?.end || new Date(s.validFor.end) > now);
  const ca = (c.caUrls ?? []).filter(valid).find((s) => (s.majorApiVersion ?? 1) === 1);
  if (!ca) throw new CtError('USAGE', 'signing config: no valid caUrls entry (Fulcio API v1)', { where: 'signingConfig.caUrls' });
  const rekor = (c.rekorTlogUrls ?? []).filter(valid).sort((a, b) => (b.majorApiVersion ?? 1) - (a.majorApiVersion ?? 1))
    .find((s) => [1, 2].includes(s.majorApiVersion ?? 1));
  const tsa = (c.tsaUrls ?? []).filter(valid)[0];
  return {
    fulcioURL: ca.url as string,
    rekorURL: rekor?.url,
    rekorApiVersion: (rekor?.majorApiVersion ?? 1) as 1 | 2,
    // A TSA service URL in a signing config is the full endpoint; @sigstore/sign uses it as is.
    tsaURL: tsa?.url,
  };
}
