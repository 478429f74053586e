/** Server-sent events from /api/v1/events, fanned out to whichever page is shown. */
type Listener = (type: string, data: unknown) => void;
const listeners = new Set<Listener>();
let source: EventSource | null = null;

/** Whether the stream is connected, for the header's indicator (not the whole page: it would re-render). */
const watchers = new Set<(connected: boolean) => void>();
let connected = false;
const setConnected = (c: boolean) => {
  connected = c;
  for (const w of watchers) w(c);
};

export function onConnection(w: (connected: boolean) => void): () => void {
  watchers.add(w);
  w(connected);
  return () => void watchers.delete(w);
}

/** The first wait before a refused or failed stream is opened again, and the longest. */
const RETRY_MIN_MS = 1_000;
const RETRY_MAX_MS = 60_000;
let retry: ReturnType<typeof setTimeout> | undefined;
let failures = 0;

/**
 * The wait before the `n`-th attempt in a row (from 0): 1 s doubling to a minute, each a random
 * half to whole of it, so the viewers of a server that refused them (429) do not come back at once.
 */
export function retryDelay(n: number, random: () => number = Math.random): number {
  const cap = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(n, 16));
  return Math.round(cap / 2 + (random() * cap) / 2);
}

function connect(): void {
  const s = new EventSource('/api/v1/events');
  source = s;
  s.onopen = () => {
    failures = 0;
    setConnected(true);
  };
  s.onerror = () => {
    setConnected(false);
    // A stream that drops is retried by EventSource itself (CONNECTING); an answer other than 200
    // (429 EVENT_STREAM_LIMIT, a 5xx from a proxy) closes it for good: it is opened again here.
    if (source !== s || s.readyState !== EventSource.CLOSED) return;
    s.close();
    source = null;
    retry = setTimeout(() => {
      retry = undefined;
      connect();
    }, retryDelay(failures++));
  };
  for (const type of ['deployment', 'host.connected', 'host.disconnected', 'host.status', 'host.alert', 'container', 'health', 'sync']) {
    s.addEventListener(type, (e) => {
      let data: unknown = null;
      try {
        data = JSON.parse((e as MessageEvent).data);
      } catch {
        return;
      }
      for (const l of listeners) l(type, data);
    });
  }
}

export function startLive(): void {
  if (source || retry) return;
  connect();
}

export function stopLive(): void {
  clearTimeout(retry);
  retry = undefined;
  failures = 0;
  source?.close();
  source = null;
  setConnected(false);
}

export function onLive(l: Listener): () => void {
  listeners.add(l);
  return () => void listeners.delete(l);
}
