/**
 * Svalinn v1 policies (SPEC §7), accepted verbatim: `{version: 1, requiredPredicates: [uri…] (≥1),
 * allowedSigners: ["sha256:<64 hex>"…] (≥1), logQuorum: int ≥ 1, mode?: strict|permissive, notes?}`.
 * A minimal evaluator for `ct vcs verify --policy` and `ct verify --policy`: the policy becomes
 * the verifier's Requirements and mode; everything else (signatures, proofs) is checked anyway.
 * The full policy engine lives in src/policy.
 */
import { CtError } from '../../core/errors.js';
import { assertJsonDepth } from '../../core/json.js';
import { canonicalBytes } from '../../core/jcs.js';
import { sha256Digest } from '../../core/digest.js';
import type { Mode } from '../evidence.js';
import type { Requirements } from '../report.js';

export interface SvalinnPolicyV1 {
  version: 1;
  requiredPredicates: string[];
  allowedSigners: string[];
  logQuorum: number;
  mode?: 'strict' | 'permissive';
  notes?: string;
}

export interface LoadedPolicy {
  policy: SvalinnPolicyV1;
  requirements: Requirements;
  mode?: Mode;
  /** sha256 of the JCS form: part of the cache key and the decision record. */
  digest: string;
  warnings: string[];
}

const KNOWN = new Set(['version', 'requiredPredicates', 'allowedSigners', 'logQuorum', 'mode', 'notes', '$schema']);

export function parseSvalinnPolicy(value: unknown, where = 'policy'): LoadedPolicy {
  const problems: string[] = [];
  const p = value as Record<string, unknown>;
  if (!p || typeof p !== 'object' || Array.isArray(p)) throw new CtError('POLICY_INVALID', `${where}: not a JSON object`, { where });
  if (p.version !== 1) problems.push('version: must be 1');
  const strings = (k: string, re?: RegExp): void => {
    const v = p[k];
    if (!Array.isArray(v) || v.length === 0) problems.push(`${k}: must be a non-empty array`);
    else v.forEach((s, i) => {
      if (typeof s !== 'string' || s.length === 0 || (re && !re.test(s))) problems.push(`${k}[${i}]: ${re ? `must match ${re.source}` : 'must be a non-empty string'}`);
    });
  };
  strings('requiredPredicates', /^[a-zA-Z][a-zA-Z0-9+.-]*:\S+$/);
  strings('allowedSigners', /^sha256:[0-9a-f]{64}$/);
  if (!Number.isSafeInteger(p.logQuorum) || (p.logQuorum as number) < 1) problems.push('logQuorum: must be an integer ≥ 1');
  if (p.mode !== undefined && p.mode !== 'strict' && p.mode !== 'permissive') problems.push('mode: must be strict or permissive');
  if (p.notes !== undefined && typeof p.notes !== 'string') problems.push('notes: must be a string');
  if (problems.length > 0) throw new CtError('POLICY_INVALID', `${where}: ${problems.join('; ')}`, { where, problems });
  const policy = p as unknown as SvalinnPolicyV1;
  const warnings = Object.keys(p).filter((k) => !KNOWN.has(k)).map((k) => `${where}: unknown field ${k} ignored`);
  return {
    policy,
    requirements: {
      requiredPredicates: [...policy.requiredPredicates],
      allowedSigners: [...policy.allowedSigners],
      logQuorum: policy.logQuorum,
      checkThresholds: true,
    },
    ...(policy.mode ? { mode: policy.mode } : {}),
    digest: sha256Digest(canonicalBytes(policy)),
    warnings,
  };
}

export function parseSvalinnPolicyText(text: string, where = 'policy'): LoadedPolicy {
  let v: unknown;
  try {
    assertJsonDepth(text, 'policy', 'POLICY_INVALID');
    v = JSON.parse(text);
  } catch (e) {
    throw new CtError('POLICY_INVALID', `${where}: not JSON (${(e as Error).message})`, { where });
  }
  return parseSvalinnPolicy(v, where);
}
