/**
 * The verification options `ct verify` and `ct run` share (trust store, Svalinn policy, mode, log
 * quorum, signer roles, legacy PAE, Sigstore identity and root): one definition, so that a bundle
 * `ct run` accepts is exactly one `ct verify` accepts with the same flags.
 */
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { CtError, asIoError } from '../core/errors.js';
import { loadTrustStore } from '../trust/store.js';
import { trustMaterial } from '../verify/trust-material.js';
import type { Mode } from '../verify/evidence.js';
import type { Requirements } from '../verify/report.js';
import type { CtpVerifyOptions } from '../verify/ctp/verify-ctp.js';
import { defaultVerifiers } from '../verify/ctp/verifiers.js';
import { parseSvalinnPolicyText } from '../verify/vcs/svalinn-v1.js';
import type { IdentityPolicy } from '../verify/sigstore/identity.js';

export interface VerifyFlags {
  trustStore?: string;
  policy?: string;
  mode?: string;
  logQuorum?: string;
  legacyPae?: boolean;
  certificateIdentity?: string;
  certificateIdentityRegexp?: string;
  certificateOidcIssuer?: string;
  trustedRoot?: string;
  anySignerRole?: boolean;
}

export const MODES: Mode[] = ['strict', 'permissive', 'audit'];

export function addVerifyOptions(cmd: Command): Command {
  return addIdentityOptions(
    cmd
      .option('--trust-store <file>', 'VCS trust store JSON (required)')
      .option('--policy <file>', 'Svalinn v1 policy JSON (requiredPredicates, allowedSigners, logQuorum, mode)')
      .option('--mode <mode>', 'strict | permissive | audit (default: the policy\'s mode, else strict)')
      .option('--log-quorum <n>', 'distinct trusted log operators required per attestation (default: policy, else 2)')
      .option('--any-signer-role', 'count attestations signed by any trusted key, whatever its role (default: builders sign build attestations; see docs/keys-and-trust-stores.md)')
      .option('--legacy-pae', 'accept signatures over the legacy PAE of the upstream MVP producer (reported)'),
  ).option('--trusted-root <file>', 'Sigstore TrustedRoot JSON (default: the public-good root shipped offline)');
}

/** The keyless identity flags (cosign's names), for every command that verifies Sigstore attestations. */
export function addIdentityOptions(cmd: Command): Command {
  return cmd
    .option('--certificate-identity <san>', 'Sigstore: accepted certificate SAN (exact)')
    .option('--certificate-identity-regexp <re>', 'Sigstore: accepted SAN pattern (anchored)')
    .option('--certificate-oidc-issuer <url>', 'Sigstore: accepted OIDC issuer (exact)');
}

/**
 * The identity the flags name (ct verify-bundle's rules: an issuer and exactly one of subject or
 * pattern); none without any flag (Sigstore attestations then prove nothing, or the policies' signers
 * count). Sigstore's modules load only when a flag is given.
 */
export async function identityFromFlags(o: Pick<VerifyFlags, 'certificateIdentity' | 'certificateIdentityRegexp' | 'certificateOidcIssuer'>): Promise<IdentityPolicy | undefined> {
  if (o.certificateIdentity === undefined && o.certificateIdentityRegexp === undefined && o.certificateOidcIssuer === undefined) return undefined;
  return (await import('../verify/sigstore/cli-options.js')).identityPolicyFromOptions(o);
}

/** The verifier's options from the flags, with the Svalinn policy's warnings to show in the report. */
export async function verifyOptionsFrom(command: string, o: VerifyFlags): Promise<{ options: CtpVerifyOptions; policyWarnings: string[] }> {
  if (!o.trustStore) throw new CtError('USAGE', `ct ${command} needs --trust-store`, {});
  if (o.mode !== undefined && !(MODES as string[]).includes(o.mode)) throw new CtError('USAGE', `--mode must be one of ${MODES.join(', ')}`, { mode: o.mode });
  const store = await loadTrustStore(o.trustStore);
  let policyText: string | undefined;
  if (o.policy) {
    try {
      policyText = await readFile(o.policy, 'utf8');
    } catch (e) {
      throw asIoError(e, o.policy);
    }
  }
  const policy = policyText !== undefined ? parseSvalinnPolicyText(policyText, o.policy) : undefined;
  const requirements: Partial<Requirements> = { ...policy?.requirements };
  if (o.anySignerRole) requirements.signerRoles = 'any';
  if (o.logQuorum !== undefined) {
    const n = Number(o.logQuorum);
    if (!Number.isSafeInteger(n) || n < 1) throw new CtError('USAGE', '--log-quorum must be an integer ≥ 1', { value: o.logQuorum });
    requirements.logQuorum = n;
  }
  // @sigstore/* load only when a Sigstore root is asked for (they cost ~0.3 s of start-up).
  const root = o.trustedRoot ? await (await import('../verify/sigstore/trusted-root.js')).loadTrustedRootFile(o.trustedRoot) : undefined;
  const identity = await identityFromFlags(o);
  return {
    options: {
      trust: trustMaterial(store, root),
      mode: (o.mode as Mode | undefined) ?? policy?.mode ?? 'strict',
      requirements,
      allowLegacyPae: Boolean(o.legacyPae),
      ...(policy ? { policyDigest: policy.digest } : {}),
      verifiers: defaultVerifiers({ ...(identity ? { policy: identity } : {}), ...(root ? { trustedRoot: root } : {}) }),
    },
    policyWarnings: policy?.warnings ?? [],
  };
}
