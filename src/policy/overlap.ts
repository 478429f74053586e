/**
 * Whether two policies can apply to the same bundle on the same host, decided conservatively from
 * the match rules: lists are disjoint only when no literal of one passes the other and glob
 * prefixes diverge; a regex against a regex is assumed to overlap.
 */
import type { CompiledPolicy, StringMatcher } from './types.js';
import type { IssueSink } from './issues.js';

/** Whether some value can pass both matchers (false only when provably disjoint). */
export function matchersOverlap(a: StringMatcher, b: StringMatcher): boolean {
  if (a.literals) return a.literals.some((v) => b.test(v));
  if (b.literals) return b.literals.some((v) => a.test(v));
  if (a.prefix !== undefined && b.prefix !== undefined) return a.prefix.startsWith(b.prefix) || b.prefix.startsWith(a.prefix);
  return true;
}

function listsOverlap(a: StringMatcher[] | undefined, b: StringMatcher[] | undefined): boolean {
  if (!a || !b) return true;
  return a.some((x) => b.some((y) => matchersOverlap(x, y)));
}

export function scopesOverlap(a: CompiledPolicy, b: CompiledPolicy): boolean {
  if (a.match.all || b.match.all) return true;
  return (
    listsOverlap(a.match.environments, b.match.environments) &&
    listsOverlap(a.match.registries, b.match.registries) &&
    listsOverlap(a.match.names, b.match.names) &&
    listsOverlap(a.match.sourceRepositories, b.match.sourceRepositories)
  );
}

/**
 * Errors for policies that contradict each other: the same name twice, or overlapping scopes that
 * demand different exact values at the same place of the same predicate (a build has one
 * provenance; both can never hold).
 */
export function checkConflicts(policies: readonly CompiledPolicy[], sink: IssueSink): void {
  const byName = new Map<string, CompiledPolicy>();
  for (const p of policies) {
    const prev = byName.get(p.name);
    if (prev) sink.error(p.at, 'conflict', `policy name ${JSON.stringify(p.name)} is already used by ${prev.file}:${prev.at.line}`);
    else byName.set(p.name, p);
  }
  for (let i = 0; i < policies.length; i++) {
    for (let j = i + 1; j < policies.length; j++) {
      const a = policies[i];
      const b = policies[j];
      if (!scopesOverlap(a, b)) continue;
      for (const ra of a.attestations) {
        for (const rb of b.attestations) {
          if (ra.predicateType !== rb.predicateType) continue;
          for (const ca of ra.conditions) {
            for (const cb of rb.conditions) {
              if (ca.pathText === cb.pathText && ca.test.kind === 'equals' && cb.test.kind === 'equals' && ca.test.value !== cb.test.value && !ca.path.includes('*')) {
                sink.error(cb.at, 'conflict', `policy ${b.name} requires ${cb.pathText} = ${JSON.stringify(cb.test.value)} for ${rb.predicateType}, but policy ${a.name} (${a.file}:${ca.at.line}) requires ${JSON.stringify(ca.test.value)} in an overlapping scope; no bundle can satisfy both`);
              }
            }
          }
        }
      }
    }
  }
}
