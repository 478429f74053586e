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

/** A test of host labels for one deploy (environment and selector), made once for all its rows. */
export function targetsOf(environment: string, selector: Record<string, string>): (labels: Readonly<Record<string, string>>) => boolean {
  const wanted = Object.entries(selector);
  return (labels) => (labels.env ?? labels.environment) === environment && wanted.every(([k, v]) => labels[k] === v);
}
