import { request, type Early } from './first-load.js';

/** The dashboard's one way to the server: same-origin fetch with the session cookie. */
export interface Me {
  kind: string;
  subject: string;
  name: string;
  role: string;
  can: { deploy: boolean; admin: boolean; audit: boolean };
  csrfToken: string | null;
}

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

let csrf: string | null = null;
export const setCsrf = (t: string | null) => void (csrf = t);

/** Responses boot.js asked for before this bundle ran (first-load.ts): each is taken once. */
function takeEarly(path: string): Promise<Response> | undefined {
  const early = (window as unknown as { ctEarly?: Early }).ctEarly;
  const hit = early?.[path];
  if (hit) delete early[path];
  return hit;
}

export async function api<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const method = init.method ?? 'GET';
  const early = method === 'GET' && init.body === undefined ? takeEarly(path) : undefined;
  return answer<T>(await (early ?? send(path, method, init.body)));
}

function send(path: string, method: string, body: unknown): Promise<Response> {
  if (method === 'GET' && body === undefined) return request(path);
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  // Every state-changing request carries the session's CSRF token.
  if (method !== 'GET' && csrf) headers['x-csrf-token'] = csrf;
  return fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
}

async function answer<T>(res: Response): Promise<T> {
  if (res.status === 204) return undefined as T;
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const e = (data as { error?: { code?: string; message?: string } }).error ?? {};
    throw new ApiError(res.status, e.code ?? 'HTTP_' + res.status, e.message ?? res.statusText);
  }
  return data as T;
}

export const q = (params: Record<string, string | number | undefined | null>) => {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') s.set(k, String(v));
  const t = s.toString();
  return t ? `?${t}` : '';
};
