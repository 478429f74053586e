/**
 * `promotion:` in the desired state: after a deploy to `from` succeeded and stayed healthy for
 * `after`, the deploy server signs the deploy's VSA and opens the pull request that pins the same
 * bundle in `to`. One rule or a list; durations like `30m`, `1h30m`, `45s`, `0s`, bounded.
 *
 *   promotion:
 *     - { from: staging, to: production, after: 30m }
 */
import { CtError } from '../../src/core/errors.js';
import { NAME } from '../../src/core/name.js';

export interface PromotionRule {
  from: string;
  to: string;
  afterMs: number;
  /** The file that declares it (for error messages). */
  file: string;
}

export const MAX_RULES = 32;
/** A week: a longer wait is almost certainly a typo (and would hold a job that long). */
export const MAX_AFTER_MS = 7 * 24 * 3600_000;
const DURATION = /^(?:(\d{1,3})d)?(?:(\d{1,4})h)?(?:(\d{1,6})m)?(?:(\d{1,7})s)?$/;

/** `1h30m` → milliseconds; undefined when it is not a duration within bounds. */
export function parseDuration(v: unknown): number | undefined {
  if (typeof v !== 'string' || v.length === 0 || v.length > 24) return undefined;
  const m = DURATION.exec(v);
  if (!m || m.slice(1).every((x) => x === undefined)) return undefined;
  const [d, h, min, s] = m.slice(1).map((x) => Number(x ?? 0));
  const ms = (((d * 24 + h) * 60 + min) * 60 + s) * 1000;
  return ms <= MAX_AFTER_MS ? ms : undefined;
}

/** The `promotion:` value of one desired-state file (absent → no rules). */
export function parsePromotionRules(v: unknown, file: string): PromotionRule[] {
  if (v === undefined || v === null) return [];
  const bad = (where: string, what: string) => new CtError('MANIFEST_INVALID', `${file}: ${where}: ${what}`, { file, where });
  const list = Array.isArray(v) ? v : [v];
  if (list.length > MAX_RULES) throw bad('promotion', `at most ${MAX_RULES} rules`);
  const out: PromotionRule[] = [];
  for (const [i, r] of list.entries()) {
    const where = Array.isArray(v) ? `promotion[${i}]` : 'promotion';
    if (!r || typeof r !== 'object' || Array.isArray(r)) throw bad(where, 'must be {from, to, after}');
    const extra = Object.keys(r).filter((k) => !['from', 'to', 'after'].includes(k));
    if (extra.length) throw bad(where, `unknown key ${extra[0].slice(0, 40)}`);
    const { from, to, after } = r as { from?: unknown; to?: unknown; after?: unknown };
    if (typeof from !== 'string' || !NAME.test(from)) throw bad(`${where}.from`, 'must be an environment name');
    if (typeof to !== 'string' || !NAME.test(to)) throw bad(`${where}.to`, 'must be an environment name');
    if (from === to) throw bad(where, 'from and to are the same environment');
    const afterMs = after === undefined ? 0 : parseDuration(after);
    if (afterMs === undefined) throw bad(`${where}.after`, 'must be a duration such as 30m, 1h30m or 45s, at most 7d');
    if (out.some((o) => o.from === from && o.to === to)) throw bad(where, `${from} → ${to} declared twice`);
    out.push({ from, to, afterMs, file });
  }
  return out;
}

/** Rules of several files; a (from, to) pair may be declared once in the whole desired state. */
export function mergeRules(perFile: readonly PromotionRule[][]): PromotionRule[] {
  const out: PromotionRule[] = [];
  for (const rules of perFile) {
    for (const r of rules) {
      const other = out.find((o) => o.from === r.from && o.to === r.to);
      if (other) throw new CtError('MANIFEST_INVALID', `${r.file}: promotion ${r.from} → ${r.to}: declared twice (also in ${other.file})`, { file: r.file });
      out.push(r);
    }
  }
  if (out.length > MAX_RULES) throw new CtError('MANIFEST_INVALID', `more than ${MAX_RULES} promotion rules`, {});
  return out;
}
