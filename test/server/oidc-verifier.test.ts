/**
 * CI OIDC tokens (server/auth/oidc.ts). They are bearer credentials: one without `exp` would be
 * good forever (a token leaked from a job's log or an artifact would deploy years later), so it is
 * refused like an expired one. A refusal names the failing claim and its value, not the rule.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey } from 'jose';
import { OidcVerifier } from '../../server/auth/oidc.js';

describe('CI OIDC tokens', () => {
  let jwks: Server;
  let issuer: string;
  let key: CryptoKey;
  let verifier: OidcVerifier;

  beforeAll(async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    key = privateKey;
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    jwks = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })));
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
    issuer = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}`;
    verifier = new OidcVerifier([{ issuer, audience: 'cerro-torre', jwksUri: `${issuer}/jwks`, role: 'operator', claims: { repository: 'acme/app' } }]);
  });
  afterAll(() => void jwks.close());

  const token = (exp: boolean) => {
    const t = new SignJWT({ repository: 'acme/app' }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuer(issuer).setAudience('cerro-torre').setIssuedAt().setSubject('repo:acme/app');
    return (exp ? t.setExpirationTime('5m') : t).sign(key);
  };

  it('accepts a signed token with an expiry', async () => {
    expect(await verifier.verify(await token(true))).toMatchObject({ ok: true, principal: { role: 'operator' } });
  });

  it('refuses a correctly signed token that has no exp claim', async () => {
    const r = await verifier.verify(await token(false));
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toContain('exp');
  });

  it('a token refused by a claim rule is told which claim failed and what it carried, not the rule', async () => {
    // Anyone can have such a token (any repository on a public CI can ask for this audience):
    // the rule would tell them which repositories and branches this server trusts.
    const strict = new OidcVerifier([{ issuer, audience: 'cerro-torre', jwksUri: `${issuer}/jwks`, role: 'operator', claims: { repository: '/acme-secret-team\\/(payments|ledger)/' } }]);
    const r = await strict.verify(await token(true));
    expect(r.ok).toBe(false);
    const reason = r.ok ? '' : r.reason;
    expect(reason).toContain('repository');
    expect(reason).toContain('acme/app');
    expect(reason).not.toContain('acme-secret-team');
  });
});
