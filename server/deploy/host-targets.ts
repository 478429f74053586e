/**
 * Which hosts a deploy goes to, from their rows: the admin-set environment label (`env` or
 * `environment`, given at enrolment) is the deployment's AND every label of the selector
 * matches. One rule for the deploy's placement, its matching hosts and the promotion's health
 * checks, which read the host table on every deploy.
 */

/** Parsed labels by their stored JSON text: a fleet's hosts mostly share a few label sets. */
const parsed = new Map<string, Readonly<Record<string, string>>>();
const MAX_PARSED = 4096;

/** The labels of a host row (frozen: one object may serve many rows with the same text). */
export function hostLabels(text: string): Readonly<Record<string, string>> {
  let labels = parsed.get(text);
  if (labels === undefined) {
    labels = Object.freeze(JSON.parse(text) as Record<string, string>);
    if (parsed.size >= MAX_PARSED) parsed.clear();
    parsed.set(text, labels);
  }
  return labels;
}

/** The hosts of one deploy (environment and selector), made once for all its rows (isTarget). */
export interface Targets {
  environment: string;
  wanted: readonly (readonly [string, string])[];
}

export function targetsOf(environment: string, selector: Record<string, string>): Targets {
  return { environment, wanted: Object.entries(selector) };
}

/**
 * Whether a host with these labels is one of the deploy's. A function of the module, not a closure
 * made per deploy: V8 drops the optimised code of a closure made per call at a major GC once none of
 * those closures is alive, so a per-deploy closure run for every host was compiled again every few
 * deploys (docs/performance.md "Round nine: the fleet").
 */
export function isTarget(t: Targets, labels: Readonly<Record<string, string>>): boolean {
  if ((labels.env ?? labels.environment) !== t.environment) return false;
  for (const [k, v] of t.wanted) if (labels[k] !== v) return false;
  return true;
}
