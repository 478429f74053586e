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

  const signed = (claims: Record<string, unknown>, iat: number | undefined, exp: number) => {
    const t = new SignJWT({ repository: 'acme/app', ...claims }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuer(issuer).setAudience('cerro-torre').setExpirationTime(exp);
    return (iat === undefined ? t : t.setIssuedAt(iat)).sign(key);
  };
  const now = () => Math.floor(Date.now() / 1000);

  it('refuses a token without a subject, which would act as "undefined" in the audit', async () => {
    const r = await verifier.verify(await signed({}, now(), now() + 300));
    expect(r).toEqual({ ok: false, reason: expect.stringContaining('sub') });
    const empty = await verifier.verify(await signed({ sub: '' }, now(), now() + 300));
    expect(empty.ok).toBe(false);
  });

  it('refuses a token signed to live longer than the configured lifetime (a day by default), with or without iat', async () => {
    const year = await verifier.verify(await signed({ sub: 'repo:acme/app' }, now(), now() + 365 * 86_400));
    expect(year).toEqual({ ok: false, reason: expect.stringContaining('maxTokenLifetimeSeconds') });
    const noIat = await verifier.verify(await signed({ sub: 'repo:acme/app' }, undefined, now() + 2 * 86_400));
    expect(noIat.ok).toBe(false);
    // An iat in the future (jose does not check it without maxTokenAge) counts from now.
    const futureIat = await verifier.verify(await signed({ sub: 'repo:acme/app' }, now() + 365 * 86_400 - 60, now() + 365 * 86_400));
    expect(futureIat).toEqual({ ok: false, reason: expect.stringContaining('maxTokenLifetimeSeconds') });
    expect(futureIat.ok ? '' : futureIat.reason).not.toContain('86400');
    // A GitLab job with a 2-hour timeout gets a 2-hour token: accepted by default, refused at 1 h.
    const twoHours = await signed({ sub: 'project_path:acme/app' }, now(), now() + 7_200);
    expect(await verifier.verify(twoHours)).toMatchObject({ ok: true, principal: { id: 'project_path:acme/app' } });
    const strict = new OidcVerifier([{ issuer, audience: 'cerro-torre', jwksUri: `${issuer}/jwks`, role: 'operator', claims: { repository: 'acme/app' }, maxTokenLifetimeSeconds: 3_600 }]);
    expect((await strict.verify(twoHours)).ok).toBe(false);
  });
});
