/**
 * The deploy action: asks the deploy server (POST /api/v1/deployments) to deploy a pushed,
 * digest-pinned bundle to an environment, authenticated with the job's OIDC token (the server
 * verifies issuer, audience and its configured claims) or an API key; then, unless told not to
 * wait, follows the deployment (GET /api/v1/deployments/:id) to a final status. The server
 * fetches, verifies and judges the bundle itself: nothing the job says is trusted beyond who it is.
 */
import { CtError } from '../../src/core/errors.js';
import type { ActionIo } from '../build/io.js';
import { githubReporter, type StatusReporter } from '../build/status.js';
import { describeError, scrub } from '../build/errors.js';
import type { DeployInputs } from './inputs.js';
import { cellCode, tableCell } from '../../src/core/markdown.js';

export interface DeployResult {
  ok: boolean;
  id?: string;
  created?: boolean;
  status?: string;
  message?: string;
  error?: { code: string; message: string };
}

/** Final statuses of a deployment (server/deploy/status.ts). */
const FINAL = new Set(['succeeded', 'denied', 'failed']);

async function call(i: DeployInputs, token: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  let res: Response;
  try {
    res = await fetch(`${i.server}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      redirect: 'error', // the token goes to the server named, never to where it redirects
      signal: AbortSignal.timeout(30_000),
    });
  } catch (e) {
    throw new CtError('NETWORK_ERROR', `${method} ${i.server}${path}: ${(e as Error).message}`, { server: i.server }, { cause: e });
  }
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    json = { message: text.slice(0, 200) };
  }
  return { status: res.status, json };
}

function serverError(what: string, r: { status: number; json: Record<string, unknown> }): CtError {
  const err = (r.json.error ?? r.json) as { code?: string; message?: string };
  const code = r.status === 401 || r.status === 403 ? 'USAGE' : r.status >= 500 ? 'NETWORK_ERROR' : 'USAGE';
  return new CtError(code, `${what}: HTTP ${r.status}${err.code ? ` ${err.code}` : ''}${err.message ? `: ${String(err.message).slice(0, 300)}` : ''}`, { status: r.status });
}

async function steps(i: DeployInputs, io: ActionIo, r: DeployResult): Promise<void> {
  let token = i.apiKey;
  if (!token) {
    try {
      token = await io.idToken(i.audience);
    } catch (e) {
      throw new CtError('USAGE', `deploying needs the job's OIDC token (permissions: id-token: write) or an api-key: ${(e as Error).message}`, { input: 'api-key' }, { cause: e });
    }
  }
  io.setSecret(token);
  const created = await call(i, token, 'POST', '/api/v1/deployments', {
    environment: i.environment,
    app: i.app,
    bundle: i.bundle,
    ...(Object.keys(i.hosts).length ? { hosts: i.hosts } : {}),
    ...(i.commit ?? i.ctx.sha ? { commit: i.commit ?? i.ctx.sha } : {}),
  });
  if (created.status !== 200 && created.status !== 202) throw serverError('deploy request refused', created);
  r.id = String(created.json.id);
  r.created = created.json.created === true;
  r.status = 'queued';
  io.info(`deployment ${r.id} ${r.created ? 'queued' : 'already exists'} for ${i.app} in ${i.environment}`);
  if (!i.wait) return;
  const deadline = Date.now() + i.timeoutSeconds * 1000;
  for (;;) {
    const got = await call(i, token, 'GET', `/api/v1/deployments/${encodeURIComponent(r.id)}`);
    if (got.status !== 200) throw serverError(`deployment ${r.id}`, got);
    r.status = String(got.json.status);
    r.message = got.json.message ? String(got.json.message) : undefined;
    if (FINAL.has(r.status)) break;
    if (Date.now() >= deadline) throw new CtError('NETWORK_ERROR', `deployment ${r.id} still ${r.status} after ${i.timeoutSeconds} s`, { id: r.id });
    await new Promise((res) => setTimeout(res, i.pollMs));
  }
  if (r.status !== 'succeeded') {
    const reason = `${r.status}${got(r)}`;
    throw new CtError(r.status === 'denied' ? 'POLICY_VIOLATION' : 'RUNTIME_FAILED', `deployment ${r.id} ${reason}`, { id: r.id, status: r.status });
  }
}

const got = (r: DeployResult): string => (r.message ? `: ${r.message}` : '');

export async function run(i: DeployInputs, io: ActionIo, reporter: StatusReporter | undefined = githubReporter({ token: i.githubToken ?? '', ctx: i.ctx, sha: i.sha })): Promise<DeployResult> {
  const secrets = [i.githubToken, i.apiKey].filter((s): s is string => !!s);
  secrets.forEach((s) => io.setSecret(s));
  const r: DeployResult = { ok: false };
  try {
    await steps(i, io, r);
    r.ok = true;
  } catch (e) {
    r.error = describeError(e);
    r.error.message = scrub(r.error.message, secrets);
  }
  if (reporter) {
    const description = r.ok ? `${i.app} → ${i.environment}: ${r.status}${got(r)}` : `${i.app} → ${i.environment}: ${r.error!.code} ${r.error!.message}`;
    const why = await reporter({ state: r.ok ? 'success' : 'failure', context: i.statusContext, description: scrub(description, secrets) });
    if (why) io.warning(why);
  }
  if (r.id) io.setOutput('deployment-id', r.id);
  if (r.status) io.setOutput('status', r.status);
  await io.summary(`## Cerro Torre deploy: ${r.ok ? '✅' : '❌'} \`${i.app}\` → \`${i.environment}\`\n\n| | |\n|---|---|\n| Bundle | \`${i.bundle}\` |\n| Deployment | \`${r.id ?? '—'}\` |\n| Status | ${tableCell(r.status ?? '—')}${r.message ? `: ${cellCode(scrub(r.message, secrets))}` : ''} |\n${r.error ? `| Error | ${cellCode(r.error.code)} ${cellCode(r.error.message)} |\n` : ''}`).catch((e) => io.warning(`job summary not written: ${(e as Error).message}`));
  if (!r.ok) io.setFailed(`${r.error!.code}: ${r.error!.message}`);
  return r;
}
