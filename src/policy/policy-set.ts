/**
 * A loaded policy repository: every policy compiled, sorted by name, with a digest over all of
 * them (part of the verification cache key, SPEC §4). A PolicySet is immutable; a repository is
 * loaded into a new set as a whole or not at all.
 */
import { canonicalize } from '../core/jcs.js';
import { sha256Digest } from '../core/digest.js';
import type { CompiledPolicy } from './types.js';

export class PolicySet {
  readonly policies: readonly CompiledPolicy[];
  readonly digest: string;

  constructor(policies: CompiledPolicy[]) {
    this.policies = Object.freeze([...policies].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.file < b.file ? -1 : 1)));
    this.digest = sha256Digest(canonicalize(this.policies.map((p) => ({ name: p.name, digest: p.digest }))));
  }

  /**
   * The policies that can match a host environment, in name order: those whose environments are
   * literal values are indexed by value; the rest (no environment rule, globs, regexes) are always
   * candidates. `evaluate` still checks every candidate's full match; this only skips policies
   * that provably cannot match, so decisions stay the same and cost less with large repositories.
   */
  candidates(environment: string): readonly CompiledPolicy[] {
    let list = this.byEnvironment.get(environment);
    if (!list) {
      list = this.policies.filter((p) => !p.match.environments || p.match.environments.some((m) => !m.literals || m.literals.includes(environment)));
      if (this.byEnvironment.size < 4096) this.byEnvironment.set(environment, list);
    }
    return list;
  }

  private readonly byEnvironment = new Map<string, readonly CompiledPolicy[]>();

  get(name: string): CompiledPolicy | undefined {
    return this.policies.find((p) => p.name === name);
  }
}
