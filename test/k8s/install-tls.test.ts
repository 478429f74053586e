/**
 * The installed webhook as the API server reaches it. `ct admission serve` runs with the
 * Deployment's own arguments, its volumes laid out as the kubelet mounts them (the ConfigMaps of
 * config.yaml, the TLS Secret), and is called as the API server calls a service-referenced webhook:
 * over TLS at <service>.<namespace>.svc, trusting only the CA the webhook configurations'
 * caBundle holds. First with certificates issued as certificate.yaml asks cert-manager (the CA
 * it would inject, the serving certificate's names and usages read from the manifest), then with
 * the commands docs/kubernetes.md gives for a cluster without cert-manager, swapped in while the
 * webhook runs, as a Secret update does.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { repoRoot } from '../support/cli.js';
import { parseYamlDocs } from './schema.js';
import { admissionUrl } from './fixture.js';
import { pod, reviewOf } from './requests.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const DIR = join(repoRoot, 'deploy/kubernetes');
const objects: Obj[] = ['deployment.yaml', 'service.yaml', 'config.yaml', 'certificate.yaml'].flatMap((f) => parseYamlDocs(readFileSync(join(DIR, f), 'utf8')));
const find = (kind: string, name?: string) => objects.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name))!;
const deployment = find('Deployment');
const service = find('Service');
const serviceName = `${service.metadata.name}.${service.metadata.namespace}.svc`;
const container = deployment.spec.template.spec.containers[0];
const tlsSecret = deployment.spec.template.spec.volumes.find((v: Obj) => v.secret).secret.secretName as string;

let work: string;
let child: ChildProcess;
let url: string;
let stderr = '';

const openssl = (args: string[], cwd: string) => execFileSync('openssl', args, { cwd, stdio: 'pipe' });

/** What cert-manager writes into the serving certificate's Secret, following certificate.yaml. */
function issueAsCertManager(dir: string): { 'tls.crt': string; 'tls.key': string; 'ca.crt': string } {
  const serving = objects.find((o) => o.kind === 'Certificate' && o.spec.secretName === tlsSecret)!;
  const caIssuer = find('Issuer', serving.spec.issuerRef.name);
  const caCert = objects.find((o) => o.kind === 'Certificate' && o.spec.secretName === caIssuer.spec.ca.secretName)!;
  const curve = (c: Obj) => {
    const { algorithm, size } = c.spec.privateKey;
    if (algorithm !== 'ECDSA' || ![256, 384].includes(size)) throw new Error(`emulation covers ECDSA P-256/P-384 only, not ${algorithm} ${size}`);
    return `ec_paramgen_curve:P-${size}`;
  };
  // Durations in hours, as the manifest writes them (manifests.test.ts checks they are Go durations).
  const days = (c: Obj) => {
    const h = /^(\d+)h$/.exec(c.spec.duration);
    if (!h) throw new Error(`emulation reads durations in hours only, not ${c.spec.duration}`);
    return String(Math.ceil(Number(h[1]) / 24));
  };
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', curve(caCert), '-nodes', '-days', days(caCert), '-subj', `/CN=${caCert.spec.commonName}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,digitalSignature', '-keyout', 'ca.key', '-out', 'ca.crt'], dir);
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', curve(serving), '-nodes', '-subj', '/', '-keyout', 'tls.key', '-out', 'tls.csr'], dir);
  const usages: string[] = serving.spec.usages ?? ['digital signature', 'key encipherment'];
  const eku: Record<string, string> = { 'server auth': 'serverAuth', 'client auth': 'clientAuth' };
  const ku: Record<string, string> = { 'digital signature': 'digitalSignature', 'key encipherment': 'keyEncipherment' };
  for (const u of usages) if (!eku[u] && !ku[u]) throw new Error(`emulation does not know usage ${u}`);
  const ext = [
    `subjectAltName=${serving.spec.dnsNames.map((n: string) => `DNS:${n}`).join(',')}`,
    ...(usages.some((u) => eku[u]) ? [`extendedKeyUsage=${usages.filter((u) => eku[u]).map((u) => eku[u]).join(',')}`] : []),
    ...(usages.some((u) => ku[u]) ? [`keyUsage=critical,${usages.filter((u) => ku[u]).map((u) => ku[u]).join(',')}`] : []),
  ];
  writeFileSync(join(dir, 'tls.ext'), `${ext.join('\n')}\n`);
  openssl(['x509', '-req', '-in', 'tls.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', days(serving), '-extfile', 'tls.ext', '-out', 'tls.crt'], dir);
  const read = (f: string) => readFileSync(join(dir, f), 'utf8');
  return { 'tls.crt': read('tls.crt'), 'tls.key': read('tls.key'), 'ca.crt': read('ca.crt') };
}

/** The first ```sh block under "Without cert-manager" in docs/kubernetes.md, run as written. */
function issueAsDocumented(dir: string): { 'tls.crt': string; 'tls.key': string; 'ca.crt': string } {
  const doc = readFileSync(join(repoRoot, 'docs/kubernetes.md'), 'utf8');
  const section = doc.slice(doc.indexOf('#### Without cert-manager'));
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
  if (!block) throw new Error('docs/kubernetes.md: no sh block under "Without cert-manager"');
  expect(block).toMatch(/^openssl /m);
  execFileSync('sh', ['-euc', block], { cwd: dir, stdio: 'pipe' });
  const read = (f: string) => readFileSync(join(dir, f), 'utf8');
  return { 'tls.crt': read('tls.crt'), 'tls.key': read('tls.key'), 'ca.crt': read('ca.crt') };
}

/** A Secret update as the kubelet applies it: every file replaced at once. */
function mountSecret(dir: string, files: Record<string, string>): void {
  for (const [name, text] of Object.entries(files)) {
    writeFileSync(join(dir, `.${name}.new`), text);
    renameSync(join(dir, `.${name}.new`), join(dir, name));
  }
}

/** An HTTPS call as the API server makes it: the service's DNS name, the caBundle's CA only. */
async function call(path: string, ca: string, body?: unknown, servername = serviceName): Promise<{ status: number; json: Obj }> {
  const agent = new Agent({ connect: { ca, servername } });
  try {
    const res = await request(`${url}${path}`, {
      method: body === undefined ? 'GET' : 'POST', dispatcher: agent,
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    return { status: res.statusCode, json: (await res.body.json()) as Obj };
  } finally {
    await agent.close();
  }
}

let mounts: Record<string, string>;
let certManagerPair: ReturnType<typeof issueAsCertManager>;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'ct-install-tls-'));
  // The pod's volumes, where the kubelet would mount them.
  mounts = {};
  const volumes = new Map<string, Obj>(deployment.spec.template.spec.volumes.map((v: Obj) => [v.name, v]));
  mkdirSync(join(work, 'cm'));
  certManagerPair = issueAsCertManager(join(work, 'cm'));
  for (const m of container.volumeMounts as Obj[]) {
    const local = join(work, 'mounts', m.name);
    mkdirSync(local, { recursive: true });
    mounts[m.mountPath] = local;
    const v = volumes.get(m.name)!;
    if (v.configMap) for (const [f, text] of Object.entries(find('ConfigMap', v.configMap.name).data as Record<string, string>)) writeFileSync(join(local, f), text);
    else if (v.secret) mountSecret(local, certManagerPair);
  }
  const remap = (arg: string) => {
    const m = /^(--[a-z-]+=)(\/.*)$/.exec(arg);
    const mount = m && Object.keys(mounts).find((from) => m[2] === from || m[2].startsWith(`${from}/`));
    return m && mount ? `${m[1]}${mounts[mount]}${m[2].slice(mount.length)}` : arg;
  };
  const args = (container.args as string[]).map(remap);
  expect(args.join(' ')).not.toMatch(/=\/etc\//);
  child = spawn(process.execPath, [join(repoRoot, 'bin', 'ct.js'), ...args, '--host', '127.0.0.1', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'silent' } });
  child.stderr!.on('data', (d) => (stderr += d));
  url = await admissionUrl(child, 'ct admission serve', () => stderr);
}, 60_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
  if (work) rmSync(work, { recursive: true, force: true });
});

const env = (deployment.spec.template.spec.containers[0].args as string[]).find((a) => a.startsWith('--environment='))!.slice('--environment='.length);

describe('install manifests: the API server reaches the webhook over TLS', () => {
  it('with the certificates cert-manager issues from certificate.yaml: probes pass, reviews are answered, other names and CAs are refused', async () => {
    const ca = certManagerPair['ca.crt'];
    const probe = container.readinessProbe.httpGet.path;
    expect((await call(probe, ca)).status).toBe(200);
    // The shipped ConfigMaps are placeholders: a review is answered, and denied, never allowed.
    const review = reviewOf(pod([{ name: 'app', image: 'registry.example.com/acme/app@sha256:' + 'a'.repeat(64) }]), { namespace: 'shop' });
    const answer = await call(`/validate/${env}`, ca, review);
    expect(answer.status).toBe(200);
    expect(answer.json.response).toMatchObject({ uid: (review as Obj).request.uid, allowed: false });
    expect(answer.json.response.status.message).toMatch(/[A-Z_]{4,}/);
    // The certificate names the service, nothing else; a stranger's CA is not the injected one.
    await expect(call(probe, ca, undefined, `${service.metadata.name}.other-namespace.svc`)).rejects.toThrow(/altnames|Hostname|IP/i);
    mkdirSync(join(work, 'stranger'));
    const stranger = issueAsCertManager(join(work, 'stranger'));
    await expect(call(probe, stranger['ca.crt'])).rejects.toThrow(/certificate/i);
  });

  it('with the documented commands for a cluster without cert-manager, swapped in while it runs', async () => {
    mkdirSync(join(work, 'doc'));
    const pair = issueAsDocumented(join(work, 'doc'));
    const tlsMount = mounts[container.volumeMounts.find((m: Obj) => volumesSecret(m.name)).mountPath];
    mountSecret(tlsMount, pair);
    const probe = container.readinessProbe.httpGet.path;
    // The webhook polls its pair; until it loads the new one the API server keeps the old CA.
    const deadline = Date.now() + 20_000;
    let last: unknown;
    for (;;) {
      try {
        expect((await call(probe, pair['ca.crt'])).status).toBe(200);
        break;
      } catch (e) {
        last = e;
        if (Date.now() > deadline) throw new Error(`the documented certificate was never served: ${String(last)}\n${stderr}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    const review = reviewOf(pod([{ name: 'app', image: 'registry.example.com/acme/app@sha256:' + 'b'.repeat(64) }]), { namespace: 'shop' });
    expect((await call(`/mutate/${env}`, pair['ca.crt'], review)).json.response).toMatchObject({ allowed: false });
    await expect(call(probe, certManagerPair['ca.crt'])).rejects.toThrow(/certificate/i);
  }, 30_000);
});

function volumesSecret(name: string): boolean {
  return Boolean(deployment.spec.template.spec.volumes.find((v: Obj) => v.name === name)?.secret);
}
