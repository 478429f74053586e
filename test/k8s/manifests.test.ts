import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { parseYamlDocs, validateK8s } from './schema.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const DIR = 'deploy/kubernetes';
const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort();
const objects: Obj[] = files.flatMap((f) => parseYamlDocs(readFileSync(join(DIR, f), 'utf8')));
const find = (kind: string) => objects.filter((o) => o.kind === kind);

/** Seconds of a Go duration (time.ParseDuration: h, m, s, ms; no days); NaN when it is not one. */
function goDuration(text: string): number {
  const units: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 0.001 };
  if (!/^(\d+(\.\d+)?(h|ms|m|s))+$/.test(text)) return NaN;
  let total = 0;
  for (const [, n, , u] of text.matchAll(/(\d+(\.\d+)?)(h|ms|m|s)/g)) total += Number(n) * units[u];
  return total;
}

describe('install manifests (deploy/kubernetes)', () => {
  it('pass the Kubernetes schema of a current release, without unknown fields', async () => {
    expect(objects.length).toBeGreaterThanOrEqual(14);
    const problems = (await Promise.all(objects.map(validateK8s))).flat();
    expect(problems).toEqual([]);
  });

  it('the validator catches what the API server would refuse (so the check above means something)', async () => {
    const dep = structuredClone(find('Deployment')[0]);
    dep.spec.template.spec.containers[0].securityContxt = { privileged: true };
    dep.spec.replicas = 'two';
    const problems = (await validateK8s(dep)).join('\n');
    expect(problems).toMatch(/securityContxt: unknown field/);
    expect(problems).toMatch(/replicas/);
    const wh = structuredClone(find('ValidatingWebhookConfiguration')[0]);
    wh.webhooks[0].sideEffects = 'Maybe';
    delete wh.webhooks[0].clientConfig;
    expect((await validateK8s(wh)).length).toBeGreaterThan(0);
    const cert = structuredClone(find('Certificate').find((c) => !c.spec.isCA)!);
    cert.spec.dnsName = cert.spec.dnsNames;
    cert.spec.privateKey.algorithm = 'EC';
    const certProblems = (await validateK8s(cert)).join('\n');
    expect(certProblems).toMatch(/spec\.dnsName: unknown field/);
    expect(certProblems).toMatch(/privateKey\/algorithm/);
  });

  it('cert-manager issues the certificate the API server expects and injects its CA into both webhook configurations', () => {
    const [dep] = find('Deployment');
    const [svc] = find('Service');
    const ns = svc.metadata.namespace;
    const secret = dep.spec.template.spec.volumes.find((v: Obj) => v.name === 'tls').secret.secretName;
    const certs = find('Certificate');
    const issuers = find('Issuer');
    const serving = certs.find((c) => c.spec.secretName === secret);
    expect(serving).toBeDefined();
    expect(serving!.metadata.namespace).toBe(ns);
    // The API server calls a service-referenced webhook at <service>.<namespace>.svc.
    expect(serving!.spec.dnsNames).toContain(`${svc.metadata.name}.${ns}.svc`);
    expect(serving!.spec.usages ?? ['server auth']).toContain('server auth');
    // Signed by a CA of its own, itself from a self-signed issuer: renewals keep the injected CA.
    // An issuerRef names an Issuer of this namespace (cert-manager.io, kind Issuer), or nothing is ever issued.
    const issuerOf = (c: Obj) => {
      const ref = c.spec.issuerRef;
      expect({ group: ref.group ?? 'cert-manager.io', kind: ref.kind ?? 'Issuer' }).toEqual({ group: 'cert-manager.io', kind: 'Issuer' });
      return issuers.find((i) => i.metadata.name === ref.name && i.metadata.namespace === c.metadata.namespace);
    };
    const ca = issuerOf(serving!);
    expect(ca?.spec.ca?.secretName).toBeDefined();
    const caCert = certs.find((c) => c.spec.secretName === ca!.spec.ca.secretName && c.metadata.namespace === ns);
    expect(caCert?.spec.isCA).toBe(true);
    // A renewed CA keeps its key: certificates it signed before still verify against the injected CA.
    expect(caCert!.spec.privateKey.rotationPolicy).toBe('Never');
    expect(issuerOf(caCert!)?.spec.selfSigned).toEqual({});
    // What cert-manager's own webhook checks: Go durations, at least 1 h, renewed at least 5 min before and before they end.
    for (const c of certs) {
      const duration = goDuration(c.spec.duration ?? '2160h');
      const renewBefore = goDuration(c.spec.renewBefore ?? '0s');
      expect(duration).toBeGreaterThanOrEqual(3600);
      if (c.spec.renewBefore !== undefined) expect(renewBefore).toBeGreaterThanOrEqual(300);
      expect(renewBefore).toBeLessThan(duration);
    }
    for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
      expect(find(kind)[0].metadata.annotations['cert-manager.io/inject-ca-from']).toBe(`${ns}/${serving!.metadata.name}`);
    }
  });

  it('kustomization lists every manifest', () => {
    const k = YAML.parse(readFileSync(join(DIR, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
    expect([...k.resources].sort()).toEqual(files);
  });

  it('webhooks: both kinds, timeout ≤ 10 s, sideEffects None, failurePolicy Fail, opt-in by namespace label naming the path, never kube-system or their own namespace', () => {
    const svc = find('Service')[0];
    for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
      const [cfg] = find(kind);
      expect(cfg).toBeDefined();
      const which = kind.startsWith('Mutating') ? 'mutate' : 'validate';
      expect(cfg.webhooks.length).toBeGreaterThanOrEqual(1);
      for (const w of cfg.webhooks) {
        expect(w.timeoutSeconds).toBeLessThanOrEqual(10);
        expect(w.sideEffects).toBe('None');
        expect(w.failurePolicy).toBe('Fail');
        expect(w.admissionReviewVersions).toEqual(['v1']);
        const env = w.namespaceSelector.matchLabels['cerro-torre.dev/environment'];
        expect(env).toMatch(/^[a-z0-9-]+$/);
        expect(w.clientConfig.service).toMatchObject({ name: svc.metadata.name, namespace: svc.metadata.namespace, path: `/${which}/${env}` });
        // kube-system and the webhook's own namespace are never judged, however they are labelled
        // (kubernetes.io/metadata.name is set by the API server and cannot be changed).
        expect(w.namespaceSelector.matchExpressions).toContainEqual({ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: expect.arrayContaining(['kube-system', svc.metadata.namespace]) });
        const resources = w.rules.flatMap((r: Obj) => r.resources);
        for (const r of ['pods', 'pods/ephemeralcontainers', 'replicationcontrollers', 'deployments', 'statefulsets', 'daemonsets', 'replicasets', 'jobs', 'cronjobs']) expect(resources).toContain(r);
      }
    }
  });

  it('Deployment, Service and PodDisruptionBudget select the same pods; the webhook serves the Service port', () => {
    const [dep] = find('Deployment');
    const [svc] = find('Service');
    const [pdb] = find('PodDisruptionBudget');
    const labels = dep.spec.template.metadata.labels;
    for (const sel of [svc.spec.selector, pdb.spec.selector.matchLabels, dep.spec.selector.matchLabels]) for (const [k, v] of Object.entries(sel)) expect(labels[k]).toBe(v);
    expect(dep.spec.replicas).toBeGreaterThan(pdb.spec.minAvailable);
    const c = dep.spec.template.spec.containers[0];
    expect(c.args.slice(0, 2)).toEqual(['admission', 'serve']);
    expect(svc.spec.ports[0].targetPort).toBe(c.ports[0].name);
    // The webhook's own namespace never opts in: a broken webhook cannot block its own pods.
    const [ns] = find('Namespace');
    expect(ns.metadata.labels['cerro-torre.dev/environment']).toBeUndefined();
  });
});

describe('API server admission configuration (deploy/kubernetes/apiserver)', () => {
  it('both webhook plugins read the kubeconfig that carries the token for the deploy server', () => {
    const dir = join(DIR, 'apiserver');
    const cfg = YAML.parse(readFileSync(join(dir, 'admission-configuration.yaml'), 'utf8')) as Obj;
    const kube = YAML.parse(readFileSync(join(dir, 'webhook-kubeconfig.yaml'), 'utf8')) as Obj;
    expect(cfg).toMatchObject({ apiVersion: 'apiserver.config.k8s.io/v1', kind: 'AdmissionConfiguration' });
    expect(cfg.plugins.map((p: Obj) => p.name).sort()).toEqual(['MutatingAdmissionWebhook', 'ValidatingAdmissionWebhook']);
    for (const p of cfg.plugins) {
      expect(p.configuration).toMatchObject({ apiVersion: 'apiserver.config.k8s.io/v1', kind: 'WebhookAdmissionConfiguration' });
      expect(p.configuration.kubeConfigFile).toMatch(/\/webhook-kubeconfig\.yaml$/);
    }
    expect(kube).toMatchObject({ apiVersion: 'v1', kind: 'Config' });
    expect(typeof kube.users[0].user.token).toBe('string');
  });
});

describe('webhooks served by the deploy server (deploy/kubernetes/deploy-server)', () => {
  const served = parseYamlDocs(readFileSync(join(DIR, 'deploy-server', 'webhooks.yaml'), 'utf8')) as Obj[];
  const kube = YAML.parse(readFileSync(join(DIR, 'apiserver', 'webhook-kubeconfig.yaml'), 'utf8')) as Obj;

  it('pass the schema, and call the deploy server\'s /admission/ paths over HTTPS, as the in-cluster ones call theirs', async () => {
    expect(served.map((o) => o.kind).sort()).toEqual(['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']);
    expect((await Promise.all(served.map(validateK8s))).flat()).toEqual([]);
    for (const cfg of served) {
      const [inCluster] = find(cfg.kind);
      // Same names: only one of the two is in force.
      expect(cfg.metadata.name).toBe(inCluster.metadata.name);
      const which = cfg.kind.startsWith('Mutating') ? 'mutate' : 'validate';
      expect(cfg.webhooks.map((w: Obj) => w.name)).toEqual(inCluster.webhooks.map((w: Obj) => w.name));
      for (const [i, w] of cfg.webhooks.entries()) {
        const env = w.namespaceSelector.matchLabels['cerro-torre.dev/environment'];
        const url = new URL(w.clientConfig.url);
        expect(url.protocol).toBe('https:');
        expect(url.pathname).toBe(`/admission/${which}/${env}`);
        // The API server sends the token of the kubeconfig user named after the webhook's host.
        expect(kube.users.map((u: Obj) => u.name)).toContain(url.host);
        const { clientConfig: _a, namespaceSelector: mine, ...rest } = w;
        const { clientConfig: _b, namespaceSelector: their, ...theirs } = inCluster.webhooks[i];
        expect(rest).toEqual(theirs);
        // The same namespaces, except ct-system: the deploy server does not run there, and leaving
        // out a namespace nothing of ours uses would leave whoever creates it unjudged.
        expect(mine.matchLabels).toEqual(their.matchLabels);
        expect(mine.matchExpressions).toEqual([{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system'] }]);
        expect(their.matchExpressions).toEqual([{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'ct-system'] }]);
      }
    }
  });
});
