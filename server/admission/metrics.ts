/**
 * Prometheus metrics of the admission webhooks, as Kyverno's `kyverno_admission_requests_total` and
 * policy-controller's request counters let an operator see what enforcing does (and what an audit
 * environment would deny) without reading logs: answers by webhook, environment, outcome and code,
 * and how long they took. `ct admission serve` serves them at `GET /metrics`; in the deploy server
 * they join its own registry (`/metrics` there).
 *
 * Label values are bounded: codes are the stable `[CODE]` of a denial (anything else is `OTHER`),
 * and environments are the configured ones (`--environment`); without that list every call is
 * `unlisted` (a caller naming paths could otherwise mint series, or take the names first).
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type AdmissionOutcome = 'allowed' | 'denied' | 'audited';

const CODE_RE = /^\[([A-Z][A-Z0-9_]{1,47})\]/;

export class AdmissionMetrics {
  readonly registry: Registry;
  private readonly answers: Counter<'webhook' | 'environment' | 'outcome' | 'code'>;
  private readonly seconds: Histogram<'webhook'>;
  private readonly refused: Counter<'status'>;
  private readonly environments: ReadonlySet<string>;

  /** Into `registry` when given (the deploy server's), else a registry of its own with the process metrics. */
  constructor(registry?: Registry, environments?: readonly string[]) {
    this.environments = new Set(environments ?? []);
    this.registry = registry ?? new Registry();
    if (!registry) collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    this.answers = new Counter({ name: 'ct_admission_requests_total', help: 'AdmissionReview answers by webhook, environment, outcome (audited: allowed in an audit environment, would be denied) and denial code', labelNames: ['webhook', 'environment', 'outcome', 'code'], registers });
    this.seconds = new Histogram({ name: 'ct_admission_duration_seconds', help: 'Time to answer an AdmissionReview', labelNames: ['webhook'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers });
    this.refused = new Counter({ name: 'ct_admission_refused_total', help: 'Webhook calls answered with an HTTP error, not an AdmissionReview (the API server counts them as failed calls: denials)', labelNames: ['status'], registers });
  }

  answered(webhook: 'mutate' | 'validate', environment: string, outcome: AdmissionOutcome, denial: string | undefined, seconds: number): void {
    const env = this.environments.has(environment) ? environment : 'unlisted';
    const code = denial === undefined ? '' : (CODE_RE.exec(denial)?.[1] ?? 'OTHER');
    this.answers.inc({ webhook, environment: env, outcome, code });
    this.seconds.observe({ webhook }, seconds);
  }

  httpError(status: number): void {
    this.refused.inc({ status: String(status) });
  }
}
