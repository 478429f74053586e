import * as client from 'openid-client';
import { Agent, fetch as undiciFetch } from 'undici';
import type { Db } from '../store/db.js';
import type { LoginConfig, LoginIssuerConfig, Role } from '../config.js';
import { NetworkGuard } from '../../src/oci/guard.js';
import { hashSecret, randomSecret } from './sessions.js';
import { mappedGroups, roleForGroups } from '../auth/role-mapping.js';

/** A login refused, with a stable code (docs/error-codes.md). */
export class LoginError extends Error {
  constructor(
    readonly code: 'LOGIN_UNKNOWN_ISSUER' | 'LOGIN_STATE_INVALID' | 'LOGIN_REJECTED' | 'LOGIN_NO_ROLE' | 'LOGIN_ISSUER_UNREACHABLE' | 'LOGIN_BUSY',
    message: string,
    /** LOGIN_BUSY: seconds to wait before trying again (the Retry-After). */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

const FLOW_TTL_MS = 10 * 60_000;
/**
 * Logins in progress kept (all replicas together): anyone may start one, unauthenticated, and each
 * is a row kept for FLOW_TTL_MS; past this many the oldest are evicted to make room for new ones.
 * 10,000 rows of at most ~1.5 KB.
 */
export const DEFAULT_MAX_PENDING_LOGINS = 10_000;
/** Logins evicted by one start at most (more than one after concurrent starts on PostgreSQL, or a lowered maxPendingLogins). */
const EVICT_BATCH = 1_000;
/** LOGIN_BUSY's Retry-After: only when evicting the oldest logins failed. */
const BUSY_RETRY_S = 5;
/** Expired logins are swept at most this often by a replica, not by every /auth/login. */
const SWEEP_EVERY_MS = 5_000;

export interface SignedIn {
  subject: string;
  name: string;
  issuer: string;
  role: Role;
  /** The person's groups that the issuer's mapping names: the session re-derives its role from them (server/auth/role-mapping.ts). */
  groups: string[];
}

/**
 * People's sign-in: OpenID Connect authorization code flow with PKCE (openid-client). The state,
 * nonce and PKCE verifier of a login in progress live in the database (any replica may receive the
 * callback), are bound to the browser that started it by a cookie, and are used once. openid-client
 * checks the rest: the `iss` response parameter, the ID token's signature, issuer, audience, expiry
 * and nonce, and the code exchange itself (an expired or reused code is refused by the issuer).
 */
export class OidcLogin {
  private readonly configs = new Map<number, Promise<client.Configuration>>();
  private readonly guard: NetworkGuard;
  private readonly agent: Agent;
  private readonly maxPending: number;
  private lastSweep = 0;

  constructor(private readonly db: Db, private readonly login: LoginConfig) {
    this.maxPending = login.maxPendingLogins ?? DEFAULT_MAX_PENDING_LOGINS;
    // Every request to an issuer goes through the one URL guard: checked before the request (IP
    // literals never reach a lookup) and again inside the socket's own lookup (DNS rebinding).
    this.guard = new NetworkGuard({ allowedAddresses: login.allowedAddresses ?? [] });
    this.agent = new Agent({ connect: { lookup: this.guard.lookup as never }, headersTimeout: 10_000, bodyTimeout: 10_000 });
  }

  issuers(): { index: number; name: string }[] {
    return this.login.oidc.map((o, index) => ({ index, name: o.name ?? new URL(o.issuer).host }));
  }

  private issuer(index: number): LoginIssuerConfig {
    const cfg = Number.isInteger(index) ? this.login.oidc[index] : undefined;
    if (!cfg) throw new LoginError('LOGIN_UNKNOWN_ISSUER', 'no such sign-in issuer');
    return cfg;
  }

  private readonly fetch: client.CustomFetch = async (url, options) => {
    await this.guard.assertHostAllowed(new URL(url).hostname);
    return (await undiciFetch(url, { ...options, dispatcher: this.agent } as never)) as unknown as Response;
  };

  private configFor(index: number): Promise<client.Configuration> {
    let c = this.configs.get(index);
    if (!c) {
      const cfg = this.issuer(index);
      const url = new URL(cfg.issuer);
      c = client.discovery(url, cfg.clientId, cfg.clientSecret, cfg.clientSecret ? client.ClientSecretPost(cfg.clientSecret) : client.None(), {
        [client.customFetch]: this.fetch,
        // A plain-http issuer is accepted only on loopback (local development and tests).
        execute: url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname) ? [client.allowInsecureRequests] : [],
      });
      // A failed discovery is retried at the next login rather than remembered.
      c.catch(() => this.configs.delete(index));
      this.configs.set(index, c);
    }
    return c;
  }

  /** Starts a login: the issuer URL to send the browser to, and the browser-binding secret. */
  async start(index: number, redirectUri: string, returnTo: string): Promise<{ url: string; browser: string }> {
    this.issuer(index);
    let config: client.Configuration;
    try {
      config = await this.configFor(index);
    } catch (e) {
      throw new LoginError('LOGIN_ISSUER_UNREACHABLE', `issuer discovery failed: ${String((e as Error).message).slice(0, 200)}`);
    }
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const browser = randomSecret();
    const now = Date.now();
    if (now - this.lastSweep >= SWEEP_EVERY_MS) {
      this.lastSweep = now;
      await this.db.run('DELETE FROM ui_logins WHERE expires_at < ?', [now]);
    }
    // Stored, then room made by evicting the oldest logins past the cap, in one transaction: a flood
    // of starts (anyone may make one) costs the oldest logins in progress, never new ones, and the
    // table stays at the cap. A person's own login is lost only if maxPendingLogins newer ones start
    // during their few seconds at the issuer. Expired rows not swept yet are the oldest, so go first.
    // ORDER BY expires_at walks ui_logins_expires; at most EVICT_BATCH rows go per start. On
    // PostgreSQL, starts in flight together on the replicas do not see each other's rows, so the
    // table can stand above the cap by those (at most the replicas' pool connections) until the
    // next start evicts it back down: not serialised, so that a flood does not queue sign-ins.
    let evicting = false;
    try {
      await this.db.tx(async (t) => {
        await t.run(
          'INSERT INTO ui_logins (state_hash, browser_hash, issuer_index, verifier, nonce, redirect_uri, return_to, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
          [hashSecret(state), hashSecret(browser), index, verifier, nonce, redirectUri, returnTo, now + FLOW_TTL_MS],
        );
        evicting = true;
        await t.run('DELETE FROM ui_logins WHERE state_hash IN (SELECT state_hash FROM ui_logins ORDER BY expires_at DESC LIMIT ? OFFSET ?)', [EVICT_BATCH, this.maxPending]);
      });
    } catch (e) {
      if (!evicting) throw e;
      // Room could not be made (the transaction, and with it this login, is rolled back): refused
      // rather than let the table grow past the cap. The database's message is not shown.
      throw new LoginError('LOGIN_BUSY', 'too many sign-ins are in progress and room could not be made: try again shortly', BUSY_RETRY_S);
    }
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid profile email',
      response_type: 'code',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    return { url: url.href, browser };
  }

  /** Finishes a login from the callback URL; the flow is consumed whatever the outcome. */
  async finish(callback: URL, browser: string | undefined): Promise<SignedIn & { returnTo: string }> {
    const state = callback.searchParams.get('state') ?? '';
    if (!state || state.length > 200) throw new LoginError('LOGIN_STATE_INVALID', 'the callback carries no state');
    const flow = await this.db.tx(async (t) => {
      const [row] = await t.query<{ browser_hash: string; issuer_index: number; verifier: string; nonce: string; redirect_uri: string; return_to: string; expires_at: number }>(
        'SELECT browser_hash, issuer_index, verifier, nonce, redirect_uri, return_to, expires_at FROM ui_logins WHERE state_hash = ?', [hashSecret(state)],
      );
      if (row) await t.run('DELETE FROM ui_logins WHERE state_hash = ?', [hashSecret(state)]);
      return row;
    });
    if (!flow || Number(flow.expires_at) < Date.now()) throw new LoginError('LOGIN_STATE_INVALID', 'unknown, used or expired login state: start again');
    if (!browser || hashSecret(browser) !== flow.browser_hash) throw new LoginError('LOGIN_STATE_INVALID', 'this login was started in another browser');
    const index = Number(flow.issuer_index);
    const cfg = this.issuer(index);
    const config = await this.configFor(index);
    const current = new URL(flow.redirect_uri);
    current.search = callback.search;
    let claims: Record<string, unknown> | undefined;
    try {
      const tokens = await client.authorizationCodeGrant(config, current, { pkceCodeVerifier: flow.verifier, expectedState: state, expectedNonce: flow.nonce, idTokenExpected: true });
      claims = tokens.claims() as Record<string, unknown> | undefined;
    } catch (e) {
      throw new LoginError('LOGIN_REJECTED', String((e as Error).message).slice(0, 300));
    }
    if (!claims || typeof claims.sub !== 'string') throw new LoginError('LOGIN_REJECTED', 'no ID token subject');
    const raw = claims[cfg.groupsClaim];
    const groups = Array.isArray(raw) ? raw.filter((g): g is string => typeof g === 'string').slice(0, 1000) : typeof raw === 'string' ? [raw] : [];
    const role = roleForGroups(cfg.roles, groups);
    if (!role) throw new LoginError('LOGIN_NO_ROLE', `none of your groups (${cfg.groupsClaim}) is given a role here`);
    const name = [claims.name, claims.preferred_username, claims.email, claims.sub].find((v) => typeof v === 'string' && v) as string;
    return { subject: claims.sub, name, issuer: cfg.issuer, role, groups: mappedGroups(cfg.roles, groups), returnTo: flow.return_to };
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
