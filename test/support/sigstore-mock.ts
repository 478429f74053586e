/**
 * Offline Sigstore for tests: the `@sigstore/mock` 0.12 CA, CT log, Rekor log and TSA, keys generated
 * per run, served from one http server on 127.0.0.1, plus the TrustedRoot JSON built from those keys.
 *
 * The three traps of the mock (SPEC §3) are handled here, where the requests come in:
 * - Rekor stores a `dsse` entry exactly as proposed, real Rekor stores a reshaped body
 *   (envelopeHash, payloadHash, signatures[{signature, verifier}]); we reshape before storing, so
 *   bundles verify like real ones. (`intoto` entries need no reshaping and work too.)
 * - its Rekor v2 inclusion proofs don't verify (the proof index is the random log index in a tree of
 *   size 1): the v2 endpoint here (`/api/v2/log/entries`) builds entries with sigstore-rekor2.ts
 *   instead, with the same log key, shaped as Rekor v2 logs them (DSSE: hash of the PAE).
 * - its TSA writes milliseconds without trailing zeros now and then, which verifiers reject: the TSA
 *   clock is set to the current whole second before each request.
 *
 * Fulcio: the mock handler takes the SAN from one raw claim and maps only GitHub claim names, all
 * prefixed with github.com. Real Fulcio derives the SAN and the extensions per issuer, so tokens from
 * the GitHub and GitLab issuers are mapped here the way Fulcio maps them (after verifying the token
 * against the test issuer's key, as Fulcio verifies against the issuer's JWKS) and certificates are
 * issued by the same mock CA; any other issuer goes to the mock's own handler (SAN = `sub`).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import sigstoreMock from '@sigstore/mock';
import type { JWTPayload } from 'jose';
import { rekorV2BodyFor, rekorV2Entry } from './sigstore-rekor2.js';
import { TestOidcIssuer, GITHUB_ISSUER, GITLAB_ISSUER, type GithubClaimsInput, type GitlabClaimsInput } from './sigstore-oidc.js';

const { initializeCA, initializeCTLog, initializeTLog, initializeTSA, fulcioHandler, rekorHandler, tsaHandler } = sigstoreMock;

type CA = Awaited<ReturnType<typeof initializeCA>>;
type HandlerFn = ReturnType<typeof fulcioHandler>['fn'];
interface KeyPair { publicKey: KeyObject; privateKey: KeyObject }

export interface SigstoreMockOptions {
  /** Refuse tokens whose signature does not verify against the test issuer (default true). */
  verifyTokens?: boolean;
  /**
   * The Fulcio CA's curve (default P-256). Public-good Fulcio signs leaves with a P-384 key: the
   * benchmark uses P-384 so that a bundle costs what #14 describes (one P-384 check per leaf).
   */
  caCurve?: 'P-256' | 'P-384';
}

export interface SigstoreMock {
  url: string;
  fulcioURL: string;
  rekorURL: string;
  tsaURL: string;
  /** What ACTIONS_ID_TOKEN_REQUEST_URL / _TOKEN are set to in a GitHub Actions job. */
  ghaTokenRequestURL: string;
  ghaTokenRequestToken: string;
  /** TrustedRoot JSON (protobuf-specs JSON form) trusting exactly this deployment. */
  trustedRoot: Record<string, unknown>;
  oidc: TestOidcIssuer;
  /** The Rekor log's key pair (to build Rekor v2 entries with proofs that verify). */
  tlogKeys: KeyPair;
  /** The Fulcio CA's and the CT log's key pairs (to re-sign altered certificates and their SCTs). */
  caKeys: KeyPair;
  ctKeys: KeyPair;
  tlogOrigin: string;
  githubToken(input?: GithubClaimsInput): Promise<string>;
  gitlabToken(input?: GitlabClaimsInput): Promise<string>;
  /** Claims served by the GitHub Actions token endpoint (audience from the request). */
  setGithubClaims(input: GithubClaimsInput): void;
  /** Requests seen per route, to assert that nothing unexpected was called. */
  hits: Record<string, number>;
  close(): Promise<void>;
}

const ecKeys = (): KeyPair => generateKeyPairSync('ec', { namedCurve: 'P-256' });

export async function startSigstoreMock(opts: SigstoreMockOptions = {}): Promise<SigstoreMock> {
  const verifyTokens = opts.verifyTokens ?? true;
  const oidc = await TestOidcIssuer.create();
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const rekorURL = `${url}/rekor`;

  const caKeys = generateKeyPairSync('ec', { namedCurve: opts.caCurve ?? 'P-256' });
  const ctKeys = ecKeys();
  const tlogKeys = ecKeys();
  const tsaKeys = ecKeys();
  const ctLog = await initializeCTLog(ctKeys);
  const ca = await initializeCA(caKeys, ctLog);
  const tlog = await initializeTLog(rekorURL, tlogKeys);
  // A mutable clock: set to the current whole second before each timestamp (trap 3).
  const tsaClock = new Date(Math.floor(Date.now() / 1000) * 1000);
  const tsa = await initializeTSA(tsaKeys, tsaClock);

  const mockFulcio = fulcioHandler(ca).fn;
  const mockRekor = rekorHandler(tlog).fn;
  const mockTsa = tsaHandler(tsa).fn;
  const ghaRequestToken = 'gha-request-token-' + createHash('sha256').update(url).digest('hex').slice(0, 12);
  let ghaClaims: GithubClaimsInput = {};
  const hits: Record<string, number> = {};

  const fulcio: HandlerFn = async (body) => {
    let json: { credentials?: { oidcIdentityToken?: string } };
    try {
      json = JSON.parse(body);
    } catch {
      return { statusCode: 400, response: 'request is not JSON' };
    }
    const token = json.credentials?.oidcIdentityToken ?? '';
    let claims: JWTPayload;
    try {
      claims = verifyTokens ? await oidc.verify(token) : JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString());
    } catch (e) {
      return { statusCode: 401, response: `identity token rejected: ${(e as Error).message}` };
    }
    const mapping = claims.iss === GITHUB_ISSUER ? githubIdentity(claims) : claims.iss === GITLAB_ISSUER ? gitlabIdentity(claims) : null;
    if (!mapping) return mockFulcio(body);
    return issue(ca, body, mapping);
  };

  const rekor: HandlerFn = async (body) => mockRekor(reshapeDsse(body));

  const rekorV2: HandlerFn = async (body) => {
    let entry: { kind: string; apiVersion: string } | null;
    try {
      entry = rekorV2BodyFor(JSON.parse(body));
    } catch {
      entry = null;
    }
    if (!entry) return { statusCode: 400, response: 'unsupported CreateEntryRequest' };
    return { statusCode: 201, response: JSON.stringify(rekorV2Entry(entry, { ...tlogKeys, origin: new URL(rekorURL).host })), contentType: 'application/json' };
  };

  const tsaFn: HandlerFn = async (body) => {
    tsaClock.setTime(Math.floor(Date.now() / 1000) * 1000);
    return mockTsa(body);
  };

  const routes: Record<string, HandlerFn> = {
    'POST /fulcio/api/v2/signingCert': fulcio,
    'POST /rekor/api/v1/log/entries': rekor,
    'POST /rekor/api/v2/log/entries': rekorV2,
    'POST /tsa/api/v1/timestamp': tsaFn,
  };

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const path = (req.url ?? '/').split('?')[0];
      const key = `${req.method} ${path}`;
      hits[key] = (hits[key] ?? 0) + 1;
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const body = Buffer.concat(chunks).toString('utf8');
      if (key === 'GET /gha/token') {
        if (req.headers.authorization !== `Bearer ${ghaRequestToken}`) return send(res, 401, 'bad request token', 'text/plain');
        const audience = new URL(req.url ?? '/', url).searchParams.get('audience') ?? 'sigstore';
        const value = await oidc.token({ ...TestOidcIssuer.githubClaims(ghaClaims), aud: audience });
        return send(res, 200, JSON.stringify({ count: 1, value }), 'application/json');
      }
      const handler = routes[key];
      if (!handler) return send(res, 404, `no route ${key}`, 'text/plain');
      const r = await handler(body);
      send(res, r.statusCode, r.response, r.contentType ?? 'text/plain');
    })().catch((e) => send(res, 500, String((e as Error)?.message ?? e), 'text/plain'));
  });

  const start = new Date(Date.now() - 3600_000).toISOString();
  const der = (k: KeyObject) => k.export({ type: 'spki', format: 'der' });
  const trustedRoot = {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [{
      baseUrl: rekorURL,
      hashAlgorithm: 'SHA2_256',
      publicKey: { rawBytes: der(tlogKeys.publicKey).toString('base64'), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start } },
      logId: { keyId: createHash('sha256').update(der(tlogKeys.publicKey)).digest('base64') },
      operator: 'ct-test-rekor',
    }],
    certificateAuthorities: [{
      subject: { organization: 'sigstore.mock', commonName: 'sigstore' },
      uri: `${url}/fulcio`,
      certChain: { certificates: [{ rawBytes: Buffer.from(ca.rootCertificate.buffer, ca.rootCertificate.byteOffset, ca.rootCertificate.byteLength).toString('base64') }] },
      validFor: { start },
      operator: 'ct-test-fulcio',
    }],
    ctlogs: [{
      baseUrl: `${url}/ct`,
      hashAlgorithm: 'SHA2_256',
      publicKey: { rawBytes: ctLog.publicKey.toString('base64'), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start } },
      logId: { keyId: Buffer.from(ctLog.logID.buffer, ctLog.logID.byteOffset, ctLog.logID.byteLength).toString('base64') },
      operator: 'ct-test-ctlog',
    }],
    timestampAuthorities: [{
      subject: { organization: 'local', commonName: 'Test TSA Timestamping' },
      uri: `${url}/tsa`,
      certChain: { certificates: [tsa.intCertificate, tsa.rootCertificate].map((c) => ({ rawBytes: Buffer.from(c.buffer, c.byteOffset, c.byteLength).toString('base64') })) },
      validFor: { start },
      operator: 'ct-test-tsa',
    }],
  };

  return {
    url,
    fulcioURL: `${url}/fulcio`,
    rekorURL,
    tsaURL: `${url}/tsa/api/v1/timestamp`,
    ghaTokenRequestURL: `${url}/gha/token`,
    ghaTokenRequestToken: ghaRequestToken,
    trustedRoot,
    oidc,
    tlogKeys,
    caKeys,
    ctKeys,
    tlogOrigin: new URL(rekorURL).host,
    githubToken: (input) => oidc.token(TestOidcIssuer.githubClaims(input)),
    gitlabToken: (input) => oidc.token(TestOidcIssuer.gitlabClaims(input)),
    setGithubClaims: (input) => { ghaClaims = input; },
    hits,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

function send(res: ServerResponse, status: number, body: string | ArrayBufferView, contentType: string): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': contentType });
  res.end(typeof body === 'string' ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength));
}

interface Identity { san: string; extensions: { oid: string; value: string; legacy?: boolean }[] }

const OID = (n: number) => `1.3.6.1.4.1.57264.1.${n}`;
const str = (v: unknown) => (v === undefined || v === null ? undefined : String(v));

function ext(list: Identity['extensions'], n: number, value: unknown, legacy = false): void {
  const v = str(value);
  if (v !== undefined && v !== '') list.push({ oid: OID(n), value: v, legacy });
}

/** Fulcio's GitHub Actions mapping (fulcio pkg/identity/github/principal.go). */
function githubIdentity(c: JWTPayload): Identity {
  const base = 'https://github.com';
  const list: Identity['extensions'] = [];
  ext(list, 1, c.iss, true);
  ext(list, 2, c.event_name, true);
  ext(list, 3, c.sha, true);
  ext(list, 4, c.workflow, true);
  ext(list, 5, c.repository, true);
  ext(list, 6, c.ref, true);
  ext(list, 8, c.iss);
  ext(list, 9, `${base}/${c.job_workflow_ref}`);
  ext(list, 10, c.job_workflow_sha);
  ext(list, 11, c.runner_environment);
  ext(list, 12, `${base}/${c.repository}`);
  ext(list, 13, c.sha);
  ext(list, 14, c.ref);
  ext(list, 15, c.repository_id);
  ext(list, 16, `${base}/${c.repository_owner}`);
  ext(list, 17, c.repository_owner_id);
  ext(list, 18, `${base}/${c.workflow_ref}`);
  ext(list, 19, c.workflow_sha);
  ext(list, 20, c.event_name);
  ext(list, 21, `${base}/${c.repository}/actions/runs/${c.run_id}/attempts/${c.run_attempt}`);
  ext(list, 22, c.repository_visibility);
  // Reusable workflows sign as the called workflow (job_workflow_ref), not the caller.
  return { san: `${base}/${c.job_workflow_ref}`, extensions: list };
}

/** Fulcio's GitLab CI mapping (fulcio pkg/identity/gitlabcom/principal.go). */
function gitlabIdentity(c: JWTPayload): Identity {
  const base = String(c.iss);
  const list: Identity['extensions'] = [];
  ext(list, 1, c.iss, true);
  ext(list, 8, c.iss);
  ext(list, 9, `https://${c.ci_config_ref_uri}`);
  ext(list, 10, c.ci_config_sha);
  ext(list, 11, c.runner_environment);
  ext(list, 12, `${base}/${c.project_path}`);
  ext(list, 13, c.sha);
  ext(list, 14, c.ref_path ?? `refs/heads/${c.ref}`);
  ext(list, 15, c.project_id);
  ext(list, 16, `${base}/${c.namespace_path}`);
  ext(list, 17, c.namespace_id);
  ext(list, 18, `https://${c.ci_config_ref_uri}`);
  ext(list, 19, c.ci_config_sha);
  ext(list, 20, c.pipeline_source);
  ext(list, 21, `${base}/${c.project_path}/-/jobs/${c.job_id}`);
  ext(list, 22, c.project_visibility);
  return { san: `https://${c.ci_config_ref_uri}`, extensions: list };
}

async function issue(ca: CA, body: string, id: Identity): Promise<Awaited<ReturnType<HandlerFn>>> {
  const json = JSON.parse(body) as { publicKeyRequest?: { publicKey?: { content?: string } } };
  const pem = json.publicKeyRequest?.publicKey?.content;
  if (!pem) return { statusCode: 400, response: 'publicKeyRequest.publicKey.content missing' };
  const publicKey = Buffer.from(pem.replace(/-{5}(BEGIN|END) .*-{5}/gm, '').replace(/\s/gm, ''), 'base64');
  const leaf = await ca.issueCertificate({ publicKey, subjectAltName: id.san, extensions: id.extensions });
  const toPem = (d: ArrayBufferView) => `-----BEGIN CERTIFICATE-----\n${Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('base64')}\n-----END CERTIFICATE-----\n`;
  const response = JSON.stringify({ signedCertificateEmbeddedSct: { chain: { certificates: [toPem(leaf), toPem(ca.rootCertificate)] } } });
  return { statusCode: 201, response, contentType: 'application/json' };
}

/** Real Rekor's canonical `dsse` 0.0.1 body (rekor pkg/types/dsse/v0.0.1): trap 1. */
function reshapeDsse(body: string): string {
  let entry: { kind?: string; apiVersion?: string; spec?: { proposedContent?: { envelope: string; verifiers: string[] } } };
  try {
    entry = JSON.parse(body);
  } catch {
    return body;
  }
  const proposed = entry.spec?.proposedContent;
  if (entry.kind !== 'dsse' || !proposed) return body;
  const env = JSON.parse(proposed.envelope) as { payload: string; signatures: { sig: string }[] };
  const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
  return JSON.stringify({
    apiVersion: entry.apiVersion,
    kind: 'dsse',
    spec: {
      envelopeHash: { algorithm: 'sha256', value: sha(proposed.envelope) },
      payloadHash: { algorithm: 'sha256', value: sha(Buffer.from(env.payload, 'base64')) },
      signatures: env.signatures.map((s) => ({ signature: s.sig, verifier: proposed.verifiers[0] })),
    },
  });
}
