/**
 * AdmissionReview v1 requests shaped as the API server sends them (Kubernetes API reference,
 * "Dynamic Admission Control": uid, kind/resource and their request* twins, name, namespace,
 * operation, userInfo, object, oldObject, dryRun, options), and an HTTPS client for the webhook.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';

type Obj = Record<string, unknown>;
// Answers are inspected freely by the tests.
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const RESOURCES: Record<string, { group: string; resource: string }> = {
  Pod: { group: '', resource: 'pods' },
  Deployment: { group: 'apps', resource: 'deployments' },
  StatefulSet: { group: 'apps', resource: 'statefulsets' },
  DaemonSet: { group: 'apps', resource: 'daemonsets' },
  ReplicaSet: { group: 'apps', resource: 'replicasets' },
  Job: { group: 'batch', resource: 'jobs' },
  CronJob: { group: 'batch', resource: 'cronjobs' },
  ReplicationController: { group: '', resource: 'replicationcontrollers' },
  Service: { group: '', resource: 'services' },
};

/** An AdmissionReview of `object`; an UPDATE's oldObject is `o.oldObject`, else the object itself (a change of nothing the webhooks read). */
export function reviewOf(object: Obj, o: { operation?: string; dryRun?: boolean; subResource?: string; namespace?: string; uid?: string; oldObject?: Obj } = {}): Obj {
  const kind = String(object.kind);
  const { group, resource } = RESOURCES[kind];
  const version = 'v1';
  const operation = o.operation ?? 'CREATE';
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: o.uid ?? randomUUID(),
      kind: { group, version, kind },
      resource: { group, version, resource },
      ...(o.subResource ? { subResource: o.subResource } : {}),
      requestKind: { group, version, kind },
      requestResource: { group, version, resource },
      ...(o.subResource ? { requestSubResource: o.subResource } : {}),
      name: (object.metadata as Obj).name,
      namespace: o.namespace ?? 'shop',
      operation,
      userInfo: { username: 'alice@example.com', uid: 'a1b2c3', groups: ['system:authenticated', 'developers'], extra: { 'scopes.example.com/team': ['shop'] } },
      object,
      oldObject: operation === 'UPDATE' ? (o.oldObject ?? object) : null,
      dryRun: o.dryRun ?? false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: operation === 'UPDATE' ? 'UpdateOptions' : 'CreateOptions' },
    },
  };
}

export function pod(containers: Obj[], extra: { initContainers?: Obj[]; ephemeralContainers?: Obj[]; spec?: Obj } = {}): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web-0', namespace: 'shop', labels: { app: 'web' } },
    spec: { ...(extra.initContainers ? { initContainers: extra.initContainers } : {}), containers, ...(extra.ephemeralContainers ? { ephemeralContainers: extra.ephemeralContainers } : {}), restartPolicy: 'Always', ...extra.spec },
  };
}

export function template(containers: Obj[], initContainers?: Obj[]): Obj {
  return { metadata: { labels: { app: 'web' } }, spec: { ...(initContainers ? { initContainers } : {}), containers } };
}

export function deployment(containers: Obj[], initContainers?: Obj[]): Obj {
  return { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'shop' }, spec: { replicas: 2, selector: { matchLabels: { app: 'web' } }, template: template(containers, initContainers) } };
}

export function replicationController(containers: Obj[], initContainers?: Obj[]): Obj {
  return { apiVersion: 'v1', kind: 'ReplicationController', metadata: { name: 'web', namespace: 'shop' }, spec: { replicas: 2, selector: { app: 'web' }, template: template(containers, initContainers) } };
}

export function cronJob(containers: Obj[], initContainers?: Obj[]): Obj {
  const t = template(containers, initContainers);
  (t.spec as Obj).restartPolicy = 'OnFailure';
  return { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'nightly', namespace: 'shop' }, spec: { schedule: '0 3 * * *', jobTemplate: { spec: { template: t } } } };
}

export interface WebhookClient {
  post(path: string, body: unknown, opts?: { timeout?: string; raw?: string; contentType?: string }): Promise<{ status: number; json: Json }>;
  close(): Promise<void>;
}

export function webhookClient(baseUrl: string, caFile: string): WebhookClient {
  const agent = new Agent({ connect: { ca: readFileSync(caFile), servername: '' } });
  return {
    async post(path, body, opts = {}) {
      const r = await request(`${baseUrl}${path}?timeout=${opts.timeout ?? '10s'}`, {
        method: 'POST',
        dispatcher: agent,
        headers: { 'content-type': opts.contentType ?? 'application/json' },
        body: opts.raw ?? JSON.stringify(body),
      });
      const text = await r.body.text();
      let json: Json = {};
      try {
        json = JSON.parse(text) as Json;
      } catch {
        json = { text };
      }
      return { status: r.statusCode, json };
    },
    close: () => agent.close(),
  };
}
