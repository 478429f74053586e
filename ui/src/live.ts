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

export function startLive(): void {
  if (source) return;
  source = new EventSource('/api/v1/events');
  source.onopen = () => setConnected(true);
  source.onerror = () => setConnected(false);
  for (const type of ['deployment', 'host.connected', 'host.disconnected', 'host.status', 'host.alert', 'container', 'health']) {
    source.addEventListener(type, (e) => {
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

export function stopLive(): void {
  source?.close();
  source = null;
  setConnected(false);
}

export function onLive(l: Listener): () => void {
  listeners.add(l);
  return () => void listeners.delete(l);
}
