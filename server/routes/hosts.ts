import { Router, type Request, type Response } from 'express';
import { createHash, randomBytes, randomUUID, verify } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import type { ServerContext } from '../context.js';
import { authenticateRequest, requirePermission } from '../auth/middleware.js';
import { can } from '../auth/principal.js';
import { sendError } from '../http-error.js';
import { publicKeyFrom } from '../../src/trust/keyid.js';
import type { HostHub } from '../channel/hub.js';
import { validateBody } from '../openapi.js';
import { hostRequestText } from '../../src/protocol/request-signature.js';
import { LogFollows } from '../logs/follow.js';
import { errorCode } from '../../src/protocol/error-code.js';
import { actor, recordAudit } from '../audit.js';
import { hostFactsProblem, knownHostFacts } from '../../src/protocol/host-facts.js';
import type { HostFacts } from '../../src/protocol/messages.js';
import { hostRef, idShaped, removeHost } from '../hosts/removal.js';
import { GENERATION_JOIN, GENERATION_OF } from '../hosts/generations.js';
import { NAME } from '../../src/core/name.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
/**
 * How audit records name an enrolment token: a prefix of its SHA-256 (the table's key), so the
 * record of its creation (who made it) and of its use (which host) can be joined, while the token
 * itself is never written anywhere.
 */
const tokenId = (token: string) => sha(token).slice(0, 16);
/** Thrown inside the enrolment transaction to roll back the host row when the token was raced away. */
class TokenRaced extends Error {}


/** A log follow's credentials judged again as a new request to the log route would be (`deploy`). */
const followRecheck = (ctx: ServerContext) => async (req: Request) => {
  const auth = await authenticateRequest(ctx.db, ctx.oidc, req);
  return auth.ok && can(auth.principal, 'deploy');
};

export function hostRoutes(ctx: ServerContext, hub: HostHub, serverPublicKey: string, follows = new LogFollows(hub, ctx.config.logFollow, followRecheck(ctx))): Router {
  const r = Router();
  const admin = requirePermission(ctx.db, ctx.oidc, 'admin');
  const read = requirePermission(ctx.db, ctx.oidc, 'read');

  r.post('/api/v1/hosts/tokens', admin, validateBody('createEnrollmentToken'), async (req: Request, res: Response) => {
    const labels = (req.body?.labels ?? {}) as Record<string, string>;
    if (typeof labels !== 'object' || Object.values(labels).some((v) => typeof v !== 'string')) return sendError(res, 400, 'BAD_REQUEST', 'labels must map strings to strings');
    const ttl = Math.min(Number(req.body?.ttlSeconds ?? 3600), 7 * 86400);
    const token = `cte_${randomBytes(32).toString('base64url')}`;
    const expiresAt = Date.now() + ttl * 1000;
    await ctx.db.run('INSERT INTO enrollment_tokens (hash, labels, expires_at) VALUES (?, ?, ?)', [sha(token), JSON.stringify(labels), expiresAt]);
    // A token lets a machine join the fleet: who minted it is recorded (the token is not).
    await recordAudit(ctx.db, 'enrollment-token.created', tokenId(token), { principal: actor(req.principal), tokenId: tokenId(token), labels, expiresAt: new Date(expiresAt).toISOString() });
    res.status(201).json({ token, expiresAt: new Date(expiresAt).toISOString() });
  });

  // Enrolment: a one-time token, then the host's own key for everything after.
  r.post('/api/v1/hosts/enroll', validateBody('enrollHost'), async (req: Request, res: Response) => {
    const { token, name, publicKey, facts } = (req.body ?? {}) as Record<string, unknown>;
    if (typeof token !== 'string' || typeof name !== 'string' || typeof publicKey !== 'string' || !NAME.test(name)) {
      return sendError(res, 400, 'BAD_REQUEST', 'token, name ([a-z0-9._-]) and publicKey are required');
    }
    // An id-shaped ref means an id (DELETE /api/v1/hosts/{id}): such a name could never be named.
    if (idShaped(name)) return sendError(res, 400, 'BAD_REQUEST', 'name must not be shaped like a host id (a UUID)');
    try {
      const key = publicKeyFrom(publicKey);
      if (key.asymmetricKeyType !== 'ed25519') throw new Error('not ed25519');
    } catch {
      return sendError(res, 400, 'KEY_INVALID', 'publicKey must be an Ed25519 SPKI key (base64 DER)');
    }
    const hostId = randomUUID();
    // The token is spent only by an enrolment that succeeds: a name already taken answers 409 and
    // leaves the token usable for another name. Order: check the token (unauthenticated callers
    // learn nothing about host names without one), claim the name, then spend the token; a
    // concurrent enrolment that spent it first rolls our host row back.
    const outcome = await ctx.db.tx(async (t) => {
      const now = Date.now();
      const [tok] = await t.query<{ labels: string }>('SELECT labels FROM enrollment_tokens WHERE hash = ? AND used_at IS NULL AND expires_at > ?', [sha(token), now]);
      if (!tok) return 'token';
      // ON CONFLICT: two enrolments racing for one name never fail on the unique index (500).
      const added = await t.run('INSERT INTO hosts (id, name, public_key, labels, facts, enrolled_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING', [
        // The protocol's fields only, as a hello's are kept; facts without them read as nothing available.
        hostId, name, publicKey, tok.labels, JSON.stringify(hostFactsProblem(facts) === undefined ? knownHostFacts(facts as HostFacts) : {}), now,
      ]);
      if (added.changes !== 1) return 'name';
      const used = await t.run('UPDATE enrollment_tokens SET used_at = ? WHERE hash = ? AND used_at IS NULL AND expires_at > ?', [now, sha(token), now]);
      if (used.changes !== 1) throw new TokenRaced();
      return 'ok';
    }).catch((e: unknown) => {
      if (e instanceof TokenRaced) return 'token' as const;
      throw e;
    });
    if (outcome === 'token') return sendError(res, 401, 'UNAUTHENTICATED', 'enrolment token is unknown, used or expired');
    if (outcome === 'name') return sendError(res, 409, 'CONFLICT', `a host named ${name} is already enrolled`);
    // The enrolment's principal is the one-time token (named by its id, never its value); the
    // token's own `enrollment-token.created` record names who minted it.
    await recordAudit(ctx.db, 'host.enrolled', name, { principal: { kind: 'enrollment-token', id: tokenId(token), role: null }, host: name, hostId, tokenId: tokenId(token) });
    res.status(201).json({ hostId, serverPublicKey });
  });

  r.get('/api/v1/hosts', read, async (_req, res) => {
    const rows = await ctx.db.query<Record<string, string | number | null>>(`SELECT h.id, h.name, h.labels, h.facts, h.containers, ${GENERATION_OF} AS generation, h.last_seen FROM hosts h ${GENERATION_JOIN} ORDER BY h.name`);
    res.json({
      hosts: rows.map((h) => ({
        id: h.id,
        name: h.name,
        labels: JSON.parse(String(h.labels)),
        facts: JSON.parse(String(h.facts)),
        containers: JSON.parse(String(h.containers)),
        generation: Number(h.generation),
        connected: Boolean(hub.connected(String(h.id))),
        lastSeen: h.last_seen ? new Date(Number(h.last_seen)).toISOString() : null,
      })),
    });
  });

  // Decommissioning: the host's key stops working everywhere, its channel is closed on whichever
  // replica holds it, and the name may be enrolled again (server/hosts/removal.ts).
  r.delete('/api/v1/hosts/:id', admin, async (req: Request, res: Response) => {
    const ref = String(req.params.id);
    if (!hostRef(ref)) return sendError(res, 404, 'NOT_FOUND', 'no such host');
    const out = await removeHost(ctx.db, ref, actor(req.principal));
    if (out.outcome === 'unknown') return sendError(res, 404, 'NOT_FOUND', 'no such host');
    // Other replicas were told by the removal itself (its NOTIFY commits with it).
    if (out.outcome === 'removed') hub.removed(out.id);
    res.status(204).end();
  });

  // The tail of a container's log, asked of the host over its channel. Logs may hold secrets:
  // operators and admins only.
  r.get('/api/v1/hosts/:id/logs', requirePermission(ctx.db, ctx.oidc, 'deploy'), async (req: Request, res: Response) => {
    const container = typeof req.query.container === 'string' ? req.query.container : '';
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(container)) return sendError(res, 400, 'BAD_REQUEST', 'container must be a container id');
    const maxBytes = Math.min(Math.max(Number(req.query.maxBytes ?? 65536) || 65536, 1), 1 << 20);
    const hostId = String(req.params.id);
    // Server-sent events, bounded per principal, per host and in time (server/logs/follow.ts).
    if (req.query.follow === '1' || req.query.follow === 'true') return follows.follow(req, res, hostId, container, maxBytes);
    const out = await hub.requestLogs(hostId, container, maxBytes);
    if ('text' in out) return void res.json({ container, ...out });
    const missing = out.code === 'CONTAINER_NOT_FOUND';
    // The code is the host's own word: kept only when shaped like one.
    sendError(res, missing ? 404 : 503, errorCode(out.code), missing ? `no container ${container} on this host` : 'the host did not answer');
  });

  // Bundle bytes for an assignment. The host verifies them again itself; the signature here only
  // keeps the bundle store from being an open download service.
  r.get('/api/v1/hosts/bundles/:digest', async (req: Request, res: Response) => {
    const digest = String(req.params.digest);
    const hostId = req.header('x-ct-host') ?? '';
    const time = req.header('x-ct-time') ?? '';
    const sig = req.header('x-ct-signature') ?? '';
    if (!/^sha256:[0-9a-f]{64}$/.test(digest)) return sendError(res, 400, 'BAD_REQUEST', 'not a digest');
    const [host] = await ctx.db.query<{ public_key: string }>('SELECT public_key FROM hosts WHERE id = ?', [hostId]);
    const fresh = Math.abs(Date.now() - Number(time)) < 60_000;
    const ok = host && fresh && verify(null, Buffer.from(hostRequestText('GET', req.path, time)), publicKeyFrom(host.public_key), Buffer.from(sig, 'base64'));
    if (!ok) return sendError(res, 401, 'UNAUTHENTICATED', 'host signature missing, stale or invalid');
    const [assigned] = await ctx.db.query('SELECT 1 AS ok FROM host_bundles WHERE host_id = ? AND bundle_digest = ?', [hostId, digest]);
    if (!assigned) return sendError(res, 403, 'FORBIDDEN', 'this bundle was not assigned to this host');
    const file = join(ctx.config.dataDir, 'bundles', `${digest.slice(7)}.ctp`);
    if (!existsSync(file)) return sendError(res, 404, 'NOT_FOUND', 'bundle not held by this server');
    res.type('application/octet-stream');
    // pipeline() closes the file when the client goes away (no descriptor leak, no unhandled error).
    await pipeline(createReadStream(file), res).catch(() => undefined);
  });
  return r;
}
