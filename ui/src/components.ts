import { html } from 'htm/preact';
import { h } from 'preact';
import { useLayoutEffect, useState, useCallback } from 'preact/hooks';
import { api, ApiError } from './api.js';
import { onLive } from './live.js';

/**
 * Loads `path`, and again whenever a live event arrives that `refresh` says concerns this page.
 * Reloads are coalesced: a burst of events makes one request.
 */
export function useData<T>(path: string | null, refresh: (type: string, data: unknown) => boolean = () => false) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const load = useCallback(() => {
    if (!path) return;
    api<T>(path).then((d) => (setData(d), setError(null)), (e) => setError(e instanceof ApiError ? e : new ApiError(0, 'NETWORK', String(e))));
  }, [path]);
  // A layout effect: the request starts as the page is committed, not a frame later (useEffect
  // waits for the next paint), and the first paint can already show the data when it is there.
  useLayoutEffect(() => {
    setData(null);
    load();
    let timer: number | undefined;
    const off = onLive((type, d) => {
      if (!refresh(type, d) || timer !== undefined) return;
      timer = window.setTimeout(() => ((timer = undefined), load()), 150);
    });
    return () => (off(), clearTimeout(timer));
  }, [path]);
  return { data, error, reload: load };
}

/** A status as a coloured badge; a plain function (no component instance) for the big grid. */
export const badge = (status: string, label?: string) => h('span', { class: `badge s-${String(status).replace(/[^a-z-]/g, '')}`, 'data-status': status }, label ?? status);

export const StatusBadge = ({ status, label }: { status: string; label?: string }) => badge(status, label);

export const ErrorBox = ({ error }: { error: ApiError | null }) =>
  error ? html`<p class="error" role="alert">${error.message} <code>${error.code}</code></p>` : null;

export const Loading = () => html`<p class="loading" aria-live="polite">Loading…</p>`;

export const short = (digest: unknown, n = 12) => (typeof digest === 'string' ? digest.replace(/^sha256:/, '').slice(0, n) : '—');

export const when = (iso: unknown) => (typeof iso === 'string' ? new Date(iso).toLocaleString() : '—');

/** Seconds between two ISO times, for a deploy's duration. */
export const duration = (a: unknown, b: unknown) => {
  const ms = Date.parse(String(b)) - Date.parse(String(a));
  return Number.isFinite(ms) && ms >= 0 ? `${(ms / 1000).toFixed(1)} s` : '—';
};
