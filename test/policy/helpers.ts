/** Builders for engine inputs and policy sets used by the policy tests. */
import { compileTexts, type LoadResult } from '../../src/policy/load.js';
import type { PolicySet } from '../../src/policy/policy-set.js';
import type { PolicyInput } from '../../src/policy/types.js';
import type { VerifiedAttestation, VerifiedSigner } from '../../src/verify/evidence.js';

export const IMAGE = `sha256:${'a'.repeat(64)}`;
export const KEY_A = `sha256:${'1'.repeat(64)}`;
export const KEY_B = `sha256:${'2'.repeat(64)}`;
export const KEY_C = `sha256:${'3'.repeat(64)}`;
export const SLSA = 'https://slsa.dev/provenance/v1';
export const SPDX = 'https://spdx.dev/Document';
export const GH_ISSUER = 'https://token.actions.githubusercontent.com';

export function keySigner(keyId: string, roles: string[] = ['builders']): VerifiedSigner {
  return { kind: 'key', keyId, roles };
}

export function ghSigner(repo = 'acme/app', ref = 'refs/heads/main', extra: Record<string, string> = {}): VerifiedSigner {
  return {
    kind: 'keyless',
    issuer: GH_ISSUER,
    subject: `https://github.com/${repo}/.github/workflows/release.yml@${ref}`,
    claims: { sourceRepositoryUri: `https://github.com/${repo}`, sourceRepositoryRef: ref, runnerEnvironment: 'github-hosted', ...extra },
  };
}

export function att(predicateType: string, signers: VerifiedSigner[], opts: { operators?: string[]; predicate?: unknown; subjects?: string[] } = {}): VerifiedAttestation {
  return {
    digest: `sha256:${'d'.repeat(64)}`,
    source: 'vcs',
    predicateType,
    predicate: opts.predicate ?? {},
    subjects: [{ name: 'app', digest: { sha256: 'a'.repeat(64) } }, ...(opts.subjects ?? ['manifest.toml']).map((name) => ({ name, digest: { sha256: 'b'.repeat(64) } }))],
    signers,
    logEntries: [],
    logOperators: opts.operators ?? ['log-a', 'log-b'],
  };
}

export function input(over: Partial<PolicyInput> & { attestations?: VerifiedAttestation[] } = {}): PolicyInput {
  const { attestations, ...rest } = over;
  return {
    evidence: { imageDigest: IMAGE, attestations: attestations ?? [att(SLSA, [keySigner(KEY_A)]), att(SPDX, [keySigner(KEY_A)])] },
    manifest: { name: 'app', version: '1.0.0', image_digest: IMAGE, runtime: { user: '1000', read_only_rootfs: true } },
    host: { environment: 'production', seccomp: true, apparmor: { present: true, enforcing: true }, ebpf: true, arch: 'amd64' },
    now: Date.parse('2026-06-01T00:00:00Z'),
    ...rest,
  };
}

/** Compiles policy texts (file name → text); throws when they do not load. */
export function setOf(files: Record<string, string>): PolicySet {
  const r = load(files);
  if (!r.set) throw new Error(`policies did not load: ${JSON.stringify(r.issues)}`);
  return r.set;
}

export function load(files: Record<string, string>): LoadResult {
  return compileTexts(Object.entries(files).map(([file, text]) => ({ file, text })));
}

/** A v2 policy in YAML with the given extra lines (indented as top-level keys). */
export function v2(name: string, body: string): string {
  return `apiVersion: cerro-torre.dev/v2\nkind: Policy\nname: ${name}\n${body.replace(/^\n/, '')}`;
}

export const KEY_POLICY = v2(
  'keys',
  `match:
  environments: [production]
signers:
  - keyId: ${KEY_A}
attestations:
  - predicateType: ${SLSA}
  - predicateType: ${SPDX}
logQuorum: 2
`,
);

/**
 * A deployments export (docs/policy.md) whose every deployment also carries an SPDX SBOM of
 * `packages` packages, as the server exports the evidence of a large image: about 250 bytes each.
 */
export function withSbom(exportJson: string, packages: number): string {
  const doc = JSON.parse(exportJson) as { deployments: { evidence: { attestations: Record<string, unknown>[] } }[] };
  const sbom = {
    spdxVersion: 'SPDX-2.3', dataLicense: 'CC0-1.0', SPDXID: 'SPDXRef-DOCUMENT', name: 'image',
    packages: Array.from({ length: packages }, (_, i) => ({
      SPDXID: `SPDXRef-Package-${i}`, name: `package-${i}`, versionInfo: `1.${i}.0`, downloadLocation: 'NOASSERTION',
      licenseConcluded: 'NOASSERTION', externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: `pkg:npm/package-${i}@1.${i}.0` }],
    })),
  };
  for (const d of doc.deployments) {
    const signed = d.evidence.attestations[0];
    d.evidence.attestations.push({ ...signed, digest: `sha256:${'5'.repeat(64)}`, predicateType: SPDX, predicate: sbom });
  }
  return JSON.stringify(doc, null, 2);
}
