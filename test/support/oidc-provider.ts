/**
 * The GitHub Actions OIDC token endpoint as a runner exposes it to a job: `GET
 * ACTIONS_ID_TOKEN_REQUEST_URL&audience=…` with `Authorization: Bearer
 * ACTIONS_ID_TOKEN_REQUEST_TOKEN`, answering `{"value": JWT}`. Tokens are GitHub-shaped (claims as
 * GitHub documents them) and signed by the test issuer the mock Fulcio trusts
 * (sigstore-mock.ts), so the token the action gets is one Sigstore accepts. Every request and
 * every issued token is recorded: tests assert the audiences asked for, and that no issued token
 * ever shows up in what the action printed.
 */
import { createServer, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { TestOidcIssuer, type GithubClaimsInput } from './sigstore-oidc.js';

export interface OidcProvider {
  /** ACTIONS_ID_TOKEN_REQUEST_URL (already carrying a query, as the real one does). */
  requestUrl: string;
  /** ACTIONS_ID_TOKEN_REQUEST_TOKEN. */
  requestToken: string;
  /** The two variables, ready to put into a job's environment. */
  env: Record<string, string>;
  requests: { audience: string | null; authorized: boolean }[];
  /** Every token handed out (to search for in logs). */
  issued: string[];
  close(): Promise<void>;
}

export async function startOidcProvider(issuer: TestOidcIssuer, claims: GithubClaimsInput = {}): Promise<OidcProvider> {
  const requestToken = `ghs_${randomBytes(18).toString('hex')}`;
  const requests: OidcProvider['requests'] = [];
  const issued: string[] = [];
  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const authorized = req.headers.authorization === `Bearer ${requestToken}`;
      const audience = url.searchParams.get('audience');
      requests.push({ audience, authorized });
      if (req.method !== 'GET' || url.pathname !== '/_apis/actions/oidc/token') {
        res.writeHead(404).end();
        return;
      }
      if (!authorized) {
        res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ message: 'bad request token' }));
        return;
      }
      // Without an audience the runner's token has the repository owner's URL as audience.
      const value = await issuer.token({ ...TestOidcIssuer.githubClaims(claims), aud: audience ?? `https://github.com/${claims.owner ?? 'acme'}` });
      issued.push(value);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ count: 1, value }));
    })().catch(() => res.writeHead(500).end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const requestUrl = `http://127.0.0.1:${port}/_apis/actions/oidc/token?api-version=2.0`;
  return {
    requestUrl,
    requestToken,
    env: { ACTIONS_ID_TOKEN_REQUEST_URL: requestUrl, ACTIONS_ID_TOKEN_REQUEST_TOKEN: requestToken },
    requests,
    issued,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
