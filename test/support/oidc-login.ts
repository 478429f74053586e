/**
 * A real OpenID Connect provider (`oidc-provider`, the certified implementation) on 127.0.0.1 for
 * the dashboard's sign-in: authorization code + PKCE, its own development login form (any
 * password; the login names the account), and ID tokens that carry each account's `groups`.
 * The port is taken first so that the deploy server can be configured with the issuer before the
 * provider knows the server's redirect URI (`configure`).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

export interface LoginProvider {
  issuer: string;
  /** Registers the clients (public, PKCE) once the redirect URIs are known. */
  configure(redirectUris: string[], opts?: { codeTtlSeconds?: number }): void;
  close(): Promise<void>;
}

/** login name → display name and groups. */
export type Accounts = Record<string, { name: string; groups: string[] }>;

export async function startLoginProvider(accounts: Accounts): Promise<LoginProvider> {
  const server: Server = createServer((_req, res) => res.writeHead(503).end('not configured yet'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const jwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  return {
    issuer,
    configure(redirectUris, opts = {}) {
      const clients = ['ct-dashboard', 'other-app'].map((client_id) => ({
        client_id, redirect_uris: redirectUris, token_endpoint_auth_method: 'none', grant_types: ['authorization_code'], response_types: ['code'],
      }));
      const provider = new Provider(issuer, {
        clients,
        jwks: { keys: [{ ...jwk, kid: 'test', use: 'sig', alg: 'RS256' }] },
        cookies: { keys: [randomBytes(16).toString('hex')] },
        claims: { openid: ['sub'], profile: ['name', 'groups'], email: ['email'] },
        // The claims of the requested scopes go into the ID token itself (no userinfo call).
        conformIdTokenClaims: false,
        pkce: { required: () => true },
        ttl: { AuthorizationCode: opts.codeTtlSeconds ?? 60, Session: 3600, Interaction: 3600, Grant: 3600, IdToken: 300, AccessToken: 300 },
        findAccount: (_ctx: unknown, sub: string) => {
          const a = accounts[sub];
          return a ? { accountId: sub, claims: () => ({ sub, name: a.name, groups: a.groups, email: `${sub}@example.test` }) } : undefined;
        },
        // Consent is granted without a second page: the first-party dashboard asks for nothing special.
        loadExistingGrant: async (ctx: { oidc: { client: { clientId: string }; session: { accountId: string }; provider: { Grant: new (o: object) => { addOIDCScope(s: string): void; save(): Promise<string> } } } }) => {
          const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
          grant.addOIDCScope('openid profile email');
          await grant.save();
          return grant;
        },
      });
      provider.on('server_error', () => undefined);
      const handle = provider.callback();
      server.removeAllListeners('request');
      server.on('request', handle);
    },
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
