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

/**
 * A dashboard sign-in over plain HTTP, in two halves as a browser makes it: `begin` calls the
 * server's /auth/login and walks the provider's login form up to the callback URL (the server has
 * not seen it yet); `end` presents that callback with the login-binding cookie. Between the two,
 * a test does what happens while a person is at the issuer (a flood of other starts).
 */
export async function beginHttpLogin(provider: LoginProvider, base: string, who: string): Promise<{ callback: string; loginCookie: string }> {
  const jar = new Map<string, string>();
  const step = async (url: string, init: RequestInit = {}) => {
    const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...(init.headers as Record<string, string>), cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair.indexOf('=');
      jar.set(pair.slice(0, i), pair.slice(i + 1));
    }
    return res;
  };
  const start = await step(`${base}/auth/login?issuer=0`);
  if (start.status !== 302) throw new Error(`/auth/login answered ${start.status}: ${(await start.text()).slice(0, 300)}`);
  const loginCookie = jar.get('__Host-ct_login') ?? '';
  jar.clear();
  let res = await step(start.headers.get('location') ?? '');
  const form = await step(new URL(res.headers.get('location') ?? '', provider.issuer).href);
  const action = /action="([^"]+)"/.exec(await form.text())?.[1] ?? '';
  res = await step(new URL(action, provider.issuer).href, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ prompt: 'login', login: who, password: 'x' }).toString() });
  for (let i = 0; i < 5; i++) {
    const location = new URL(res.headers.get('location') ?? '', provider.issuer).href;
    if (location.startsWith(`${base}/auth/callback`)) return { callback: location, loginCookie };
    res = await step(location);
  }
  throw new Error('the provider never redirected to the callback');
}

/** Presents a callback from `beginHttpLogin`: the status, the error code if any, whether a session cookie was set. */
export async function endHttpLogin(login: { callback: string; loginCookie: string }): Promise<{ status: number; code: string; session: boolean }> {
  const res = await fetch(login.callback, { redirect: 'manual', headers: { cookie: `__Host-ct_login=${login.loginCookie}` } });
  const text = await res.text();
  return { status: res.status, code: /data-code>([A-Z_]+)</.exec(text)?.[1] ?? '', session: res.headers.getSetCookie().some((c) => c.startsWith('__Host-ct_session=') && !c.startsWith('__Host-ct_session=;')) };
}

/**
 * Resolves once the clock has passed the current millisecond: logins are ordered by their expiry
 * (start time + 10 min, in ms), so a start made after this is strictly newer than every earlier one.
 */
export async function nextMillisecond(): Promise<void> {
  const now = Date.now();
  while (Date.now() <= now) await new Promise((r) => setTimeout(r, 1));
}
