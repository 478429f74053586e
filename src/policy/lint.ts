/**
 * `ct policy lint`: the schema and compile checks (errors), plus what is legal but probably wrong
 * (warnings): unanchored patterns, overlapping matches, unknown predicate types, expired policies,
 * rules that can never be met.
 */
import type { PolicyIssue } from './issues.js';
import { compileTexts, type SourceText } from './load.js';
import { scopesOverlap } from './overlap.js';
import type { PolicySet } from './policy-set.js';

/** Predicate types in common use; anything else is probably a typo (lint warning, not an error). */
export const KNOWN_PREDICATE_TYPES: ReadonlySet<string> = new Set([
  'https://slsa.dev/provenance/v1',
  'https://slsa.dev/provenance/v0.2',
  'https://slsa.dev/verification_summary/v1',
  'https://spdx.dev/Document',
  'https://spdx.dev/Document/v2.3',
  'https://cyclonedx.org/bom',
  'https://cyclonedx.org/bom/v1.5',
  'https://in-toto.io/attestation/vulns',
  'https://in-toto.io/attestation/test-result/v0.1',
  'https://in-toto.io/attestation/release/v0.1',
  'https://openvex.dev/ns',
  'https://openvex.dev/ns/v0.2.0',
  'https://cosign.sigstore.dev/attestation/v1',
  'https://cosign.sigstore.dev/attestation/vuln/v1',
  'https://verified-container.org/v1/source',
  'https://verified-container.org/v1/review',
  'https://verified-container.org/v1/signature',
]);

export interface LintResult {
  set?: PolicySet;
  issues: PolicyIssue[];
  errors: number;
  warnings: number;
}

export function lintTexts(texts: readonly SourceText[], now = Date.now()): LintResult {
  const loaded = compileTexts(texts);
  const issues = [...loaded.issues];
  const set = loaded.set;
  if (set) {
    for (const p of set.policies) {
      if (p.expires && p.expires.time <= now) issues.push({ ...p.expires.at, severity: 'warning', kind: 'expired', message: `policy ${p.name} expired at ${p.expires.text}: it no longer applies, and a bundle it alone matches is denied (NO_POLICY)` });
      const reqs = [...p.attestations.map((a) => ({ type: a.predicateType, at: a.at })), ...p.thresholds.filter((t) => t.predicateType).map((t) => ({ type: t.predicateType!, at: t.at }))];
      for (const r of reqs) {
        if (!KNOWN_PREDICATE_TYPES.has(r.type)) issues.push({ ...r.at, severity: 'warning', kind: 'unknown-predicate-type', message: `predicate type ${r.type} is not one this linter knows; check the spelling` });
      }
      if (p.runtime?.seccomp && p.runtime.seccomp.extraSyscalls.size > 0 && p.runtime.seccomp.level === 'runtime-default') {
        issues.push({ ...p.runtime.seccomp.at, severity: 'warning', kind: 'unreachable', message: 'extraSyscalls only matter for profiles the bundle ships; with runtime-default and no profile the host applies RuntimeDefault as is' });
      }
      p.attestations.forEach((a, i) => {
        a.conditions.forEach((c) => {
          if (c.test.kind === 'exists' && c.test.value === false && a.conditions.length > 1) {
            issues.push({ ...c.at, severity: 'warning', kind: 'unreachable', message: `attestations[${i}]: a condition that ${c.pathText} is absent combined with other conditions is rarely what is meant` });
          }
        });
      });
    }
    const ps = set.policies;
    for (let i = 0; i < ps.length; i++) {
      for (let j = i + 1; j < ps.length; j++) {
        if (!scopesOverlap(ps[i], ps[j])) continue;
        const [a, b] = [ps[i], ps[j]];
        const modes = a.mode === b.mode ? '' : ` with different modes (${a.name}: ${a.mode}, ${b.name}: ${b.mode}; a strict policy's violations deny whatever the other says)`;
        issues.push({ ...b.match.at, severity: 'warning', kind: 'overlap', message: `policies ${a.name} (${a.file}:${a.match.at.line}) and ${b.name} can match the same bundle${modes}; both apply` });
      }
    }
  }
  issues.sort((x, y) => (x.file < y.file ? -1 : x.file > y.file ? 1 : x.line - y.line || x.column - y.column));
  return { set, issues, errors: issues.filter((i) => i.severity === 'error').length, warnings: issues.filter((i) => i.severity === 'warning').length };
}
