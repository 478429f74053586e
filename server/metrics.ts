import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  registry: Registry;
  webhooks: Counter<'source' | 'outcome'>;
  decisions: Counter<'outcome' | 'code'>;
  deploys: Counter<'environment' | 'status'>;
  verifySeconds: Histogram<'cached'>;
  /** `/api/v1/verify` answers: `stored` ones sent from the verdict cache, `computed` by the route. */
  verifyAnswers: Counter<'source'>;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    webhooks: new Counter({ name: 'ct_webhooks_total', help: 'Webhook deliveries by outcome', labelNames: ['source', 'outcome'], registers: [registry] }),
    decisions: new Counter({ name: 'ct_decisions_total', help: 'Verification decisions', labelNames: ['outcome', 'code'], registers: [registry] }),
    deploys: new Counter({ name: 'ct_deploys_total', help: 'Deploys by final status', labelNames: ['environment', 'status'], registers: [registry] }),
    verifySeconds: new Histogram({ name: 'ct_verify_seconds', help: 'Verification latency', labelNames: ['cached'], registers: [registry] }),
    verifyAnswers: new Counter({ name: 'ct_verify_answers_total', help: '/api/v1/verify answers by source (stored: the verdict cache; computed: the route)', labelNames: ['source'], registers: [registry] }),
  };
}
