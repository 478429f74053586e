import { Router, type Request, type Response } from 'express';
import type { ServerContext } from '../context.js';
import { requirePermission } from '../auth/middleware.js';
import { sendError } from '../http-error.js';
import { actor, recordAudit } from '../audit.js';
import type { HostHub } from '../channel/hub.js';
import { validateBody } from '../openapi.js';
import { containerIdFor } from '../../src/protocol/container-id.js';
import type { ContainerAction, ContainerState } from '../../src/protocol/messages.js';
import { errorCode } from '../../src/protocol/error-code.js';

type Body = { action: ContainerAction; signal?: string; graceSeconds?: number };
type HostResult = { hostId: string; state?: ContainerState; code?: string; message?: string };

const CONTAINER = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** HTTP status of a host's refusal, when every host refused. */
const STATUS: Record<string, number> = { CONTAINER_NOT_FOUND: 404, CONTAINER_BUSY: 409, USAGE: 400, HOST_UNAVAILABLE: 503 };

/**
 * Lifecycle actions (stop, start, restart, kill, pause, resume, remove) on running apps, carried
 * to the hosts over their channel: per deployment (every host that runs its app) or per container
 * on one host. Operators and admins; each request is audited with who asked and what each host
 * answered, whether it worked or not.
 */
export function containerActionRoutes(ctx: ServerContext, hub: HostHub): Router {
  const r = Router();
  const operate = requirePermission(ctx.db, ctx.oidc, 'deploy');

  const act = async (req: Request, res: Response, subject: string, container: string, hostIds: string[]) => {
    const body = req.body as Body;
    const ask = { action: body.action, ...(body.signal ? { signal: body.signal } : {}), ...(body.graceSeconds !== undefined ? { graceSeconds: body.graceSeconds } : {}) };
    const results: HostResult[] = await Promise.all(hostIds.map(async (hostId) => {
      const answer = await hub.requestAction(hostId, container, ask);
      // The code is the host's own word: kept only when shaped like one (it becomes this answer's error code).
      return { hostId, ...answer, ...('code' in answer ? { code: errorCode(answer.code) } : {}) };
    }));
    await recordAudit(ctx.db, 'container.action', subject, { principal: actor(req.principal), container, ...ask, results });
    const failed = results.filter((x) => x.code);
    if (failed.length === results.length) {
      const code = failed[0].code!;
      return sendError(res, STATUS[code] ?? 502, code, failed[0].message ?? `the host refused: ${code}`, { container, results });
    }
    res.json({ container, action: body.action, results });
  };

  r.post('/api/v1/deployments/:id/actions', operate, validateBody('containerAction'), async (req: Request, res: Response) => {
    const [dep] = await ctx.db.query<{ id: string; environment: string; app: string }>('SELECT id, environment, app FROM deployments WHERE id = ?', [String(req.params.id)]);
    if (!dep) return sendError(res, 404, 'NOT_FOUND', 'no such deployment');
    const container = containerIdFor(dep.environment, dep.app);
    // The hosts that report running (or holding) this app's container.
    const hosts = await ctx.db.query<{ id: string; containers: string }>('SELECT id, containers FROM hosts ORDER BY name');
    const holding = hosts.filter((h) => (JSON.parse(h.containers || '[]') as { id: string; state: string }[]).some((c) => c.id === container && c.state !== 'removed')).map((h) => h.id);
    if (holding.length === 0) return sendError(res, 404, 'CONTAINER_NOT_FOUND', `no host reports ${dep.environment}/${dep.app}`, { container });
    await act(req, res, dep.id, container, holding);
  });

  r.post('/api/v1/hosts/:id/containers/:container/actions', operate, validateBody('containerAction'), async (req: Request, res: Response) => {
    const container = String(req.params.container);
    if (!CONTAINER.test(container)) return sendError(res, 400, 'BAD_REQUEST', 'container must be a container id');
    const [host] = await ctx.db.query<{ id: string }>('SELECT id FROM hosts WHERE id = ?', [String(req.params.id)]);
    if (!host) return sendError(res, 404, 'NOT_FOUND', 'no such host');
    await act(req, res, `${host.id}/${container}`, container, [host.id]);
  });
  return r;
}
