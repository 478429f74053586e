/**
 * The keyless identity and trust options every command that verifies Sigstore bundles takes
 * (`ct verify-bundle`, `ct verify` of a .ctp), turned into library inputs in one place.
 */
import { readFile } from 'node:fs/promises';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { CtError, asIoError } from '../../core/errors.js';
import { assertIdentityPolicy, type IdentityPolicy } from './identity.js';
import { loadTrustedRootFile, publicGoodTrustedRoot, defaultTrustCacheDir, type LoadedTrustedRoot } from './trusted-root.js';
import type { SigstoreThresholds } from './verifier.js';

export interface SigstoreCliOptions {
  certificateIdentity?: string;
  certificateIdentityRegexp?: string;
  certificateOidcIssuer?: string;
  /** `name=value`, repeatable: Fulcio claim names or aliases (repositoryId, ownerId, ref, sha, …). */
  certificateClaim?: string[];
  trustedRoot?: string;
  tlogThreshold?: string;
  ctlogThreshold?: string;
  timestampThreshold?: string;
}

/** The identity policy, or undefined when no identity option was given. */
export function identityPolicyFromOptions(o: SigstoreCliOptions): IdentityPolicy | undefined {
  const any = o.certificateIdentity ?? o.certificateIdentityRegexp ?? o.certificateOidcIssuer ?? (o.certificateClaim?.length ? 'x' : undefined);
  if (any === undefined) return undefined;
  if (o.certificateIdentity !== undefined && o.certificateIdentityRegexp !== undefined) {
    throw new CtError('USAGE', '--certificate-identity and --certificate-identity-regexp exclude each other', {});
  }
  if (!o.certificateOidcIssuer) throw new CtError('USAGE', '--certificate-oidc-issuer is required with a certificate identity', {});
  if (o.certificateIdentity === undefined && o.certificateIdentityRegexp === undefined) {
    throw new CtError('USAGE', '--certificate-identity or --certificate-identity-regexp is required', {});
  }
  const claims: Record<string, string> = {};
  for (const c of o.certificateClaim ?? []) {
    const i = c.indexOf('=');
    if (i <= 0) throw new CtError('USAGE', `--certificate-claim ${JSON.stringify(c)}: expected name=value`, { claim: c });
    claims[c.slice(0, i)] = c.slice(i + 1);
  }
  const p: IdentityPolicy = { issuer: o.certificateOidcIssuer };
  if (o.certificateIdentity !== undefined) p.subject = o.certificateIdentity;
  if (o.certificateIdentityRegexp !== undefined) p.subjectRegExp = o.certificateIdentityRegexp;
  if (Object.keys(claims).length) p.claims = claims;
  assertIdentityPolicy(p);
  return p;
}

export async function trustedRootFromOptions(o: SigstoreCliOptions, env: NodeJS.ProcessEnv = process.env): Promise<LoadedTrustedRoot> {
  return o.trustedRoot ? loadTrustedRootFile(o.trustedRoot) : publicGoodTrustedRoot(defaultTrustCacheDir(env));
}

export function thresholdsFromOptions(o: SigstoreCliOptions): SigstoreThresholds {
  const n = (v: string | undefined, name: string) => {
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v)) throw new CtError('USAGE', `--${name}: not a non-negative integer: ${v}`, { option: name });
    return Number(v);
  };
  return { tlog: n(o.tlogThreshold, 'tlog-threshold'), ctlog: n(o.ctlogThreshold, 'ctlog-threshold'), timestamps: n(o.timestampThreshold, 'timestamp-threshold') };
}

export async function publicKeyFromFile(path: string): Promise<KeyObject> {
  let pem: Buffer;
  try {
    pem = await readFile(path);
  } catch (e) {
    throw asIoError(e, path);
  }
  try {
    return createPublicKey(pem);
  } catch (e) {
    throw new CtError('KEY_INVALID', `${path}: not a PEM public key (${(e as Error).message})`, { path }, { cause: e });
  }
}
