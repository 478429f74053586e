import { Router, type Request, type Response } from 'express';
import type { ServerContext } from '../context.js';
import type { Role } from '../config.js';
import { requirePermission } from '../auth/middleware.js';
import { createApiKey, listApiKeys, liveApiKeyCount, revokeApiKey } from '../auth/api-keys.js';
import { BOOTSTRAP_KEY_NAME, apiKeyStanding, linkMinter, type ApiKeyStanding } from '../auth/configured-trust.js';
import { tokenCacheFor } from '../auth/token-cache.js';
import { validateBody } from '../openapi.js';
import { limitMessage, pageLimit } from './page.js';
import { sendError } from '../http-error.js';
import { actor, recordAudit } from '../audit.js';

/** A key lives 90 days unless asked otherwise, at most 366 (GitHub's fine-grained tokens: a year). */
export const API_KEY_DEFAULT_TTL_S = 90 * 86_400;
export const API_KEY_MAX_TTL_S = 366 * 86_400;
/** Why a key this credential would mint is refused from the start, by the state it would have. */
const MINT_REFUSED: Record<Exclude<ApiKeyStanding, { ok: true }>['state'], string> = {
  // The credential ends now (it authenticated a moment ago): the key would end with it.
  expired: 'the credential minting it ends now, and a key ends no later than what minted it: use one with time left',
  // Not reached (the row judged is never revoked); a minter revoked up the chain is minter-untrusted.
  revoked: 'a key minted by this credential would not be accepted: something in its chain was revoked',
  'minter-untrusted': 'a key minted by this credential would not be accepted: it is itself minted by a chain of 8 keys, or something in that chain was revoked or has ended',
  'minter-no-role': 'a key minted by this credential would not be accepted: the groups of the sign-in behind it get no role under this server\'s mapping now',
};

/** Live keys (neither revoked nor expired) at most: each is a standing credential someone must review. */
export const MAX_LIVE_API_KEYS = 1_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * `/api/v1/api-keys`: admins make, list and revoke API keys (`ct api-key`), one per agent, CI job or
 * person's script, each with the role it needs. A key is shown once, at creation; it is accepted
 * only while what minted it is (configured-trust.ts apiKeyAccepted), so a session opened by a
 * sign-in link, which no revocation of its minter could then reach, mints none.
 */
export function apiKeyRoutes(ctx: ServerContext): Router {
  const r = Router();
  const admin = requirePermission(ctx.db, ctx.oidc, 'admin');

  r.post('/api/v1/api-keys', admin, validateBody('createApiKey'), async (req: Request, res: Response) => {
    const body = req.body as { name: string; role: Role; ttlSeconds?: number };
    if (body.name === BOOTSTRAP_KEY_NAME) return sendError(res, 400, 'BAD_REQUEST', `the name ${BOOTSTRAP_KEY_NAME} is the configured bootstrap key's`);
    const minter = req.principal ? linkMinter(req.principal) : null;
    if (!minter) return sendError(res, 403, 'API_KEY_FORBIDDEN', 'a session opened by a sign-in link (or a host) cannot make API keys: use an API key, a CI token or sign in with an issuer');
    // An issuer's sign-in: the key keeps the session's mapped groups, as the identity provider gave
    // them at that sign-in, and its role narrows with what this server's mapping gives those groups
    // (configured-trust.ts apiKeyStanding); removing the person from a group at the provider does
    // not reach it. A session from before groups were kept mints nothing.
    const minterGroups = minter.startsWith('issuer:') ? req.principal?.groups ?? null : undefined;
    if (minterGroups === null) return sendError(res, 403, 'API_KEY_FORBIDDEN', 'this session was opened before sign-ins kept their groups: sign in again to make API keys');
    const ttlMs = (body.ttlSeconds ?? API_KEY_DEFAULT_TTL_S) * 1000;
    // The groups kept are as the identity provider gave them at that sign-in, never asked again: a
    // person removed from a group there still has them here. So the key ends with the session that
    // minted it (which also ends then), not up to 366 days later; an issuer's session always has an
    // end (the middleware sets it), none would mint a key that is already dead.
    // A key minted by a key ends no later than it: it is refused once its minter expires
    // (minter-untrusted), and the list then showed it live until a later date.
    const notAfter = minterGroups ? req.principal?.expiresAt ?? 0 : req.principal?.kind === 'api-key' ? req.principal.expiresAt : undefined;
    // The key would be accepted (its minter's chain not too long, nothing in it revoked since this
    // request authenticated): never hand out a key that is dead from the start.
    const row = { name: body.name, hash: '', role: body.role, revoked_at: null, expires_at: Math.min(Date.now() + ttlMs, notAfter ?? Infinity), minted_by: minter, minter_groups: minterGroups ? JSON.stringify(minterGroups) : null };
    const standing = await apiKeyStanding(ctx.db, row);
    if (!standing.ok) return sendError(res, 403, 'API_KEY_FORBIDDEN', MINT_REFUSED[standing.state]);
    const by = actor(req.principal);
    // Counted and inserted under one lock: replicas creating at once must not pass the bound together.
    const k = await ctx.db.tx(async (t) => {
      if (t.dialect === 'postgres') await t.query('SELECT pg_advisory_xact_lock(74687)');
      if ((await liveApiKeyCount(t)) >= MAX_LIVE_API_KEYS) return undefined;
      return createApiKey(t, body.name, body.role, { ttlMs, mintedBy: minter, createdBy: by, minterGroups: minterGroups ?? undefined, notAfter });
    });
    if (!k) return sendError(res, 409, 'API_KEY_LIMIT', `${MAX_LIVE_API_KEYS} API keys are neither revoked nor expired: revoke some first (ct api-key list --all shows them all, also those refused now; ct api-key revoke)`);
    const expiresAt = new Date(k.expiresAt!).toISOString();
    // Who made which key, for which role (the key itself is never written anywhere).
    await recordAudit(ctx.db, 'api-key.created', k.id, { principal: by, id: k.id, name: body.name, role: body.role, mintedBy: minter, expiresAt });
    res.setHeader('cache-control', 'no-store');
    res.status(201).json({ id: k.id, name: body.name, role: body.role, key: k.key, createdAt: new Date(k.createdAt).toISOString(), expiresAt, mintedBy: minter });
  });

  r.get('/api/v1/api-keys', admin, async (req: Request, res: Response) => {
    const limit = pageLimit(req.query.limit, 1000, 1000);
    if (limit === 'bad') return sendError(res, 400, 'BAD_REQUEST', limitMessage(1000));
    const state = req.query.state ?? 'all';
    if (state !== 'all' && state !== 'live') return sendError(res, 400, 'BAD_REQUEST', 'state must be live or all');
    res.json(await listApiKeys(ctx.db, limit, state === 'live'));
  });

  r.delete('/api/v1/api-keys/:id', admin, async (req: Request, res: Response) => {
    const id = String(req.params.id);
    const { outcome, descendants } = UUID.test(id) ? await revokeApiKey(ctx.db, id) : { outcome: 'unknown' as const, descendants: 0 };
    if (outcome === 'unknown') return sendError(res, 404, 'NOT_FOUND', 'no such API key');
    tokenCacheFor(ctx.db).forgetKind('api-key');
    if (outcome === 'revoked' || descendants > 0) await recordAudit(ctx.db, 'api-key.revoked', id, { principal: actor(req.principal), id, alreadyRevoked: outcome === 'already', mintedKeysRevoked: descendants });
    res.status(204).end();
  });
  return r;
}
