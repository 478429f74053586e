/** Server-sent events from /api/v1/events, fanned out to whichever page is shown. */
type Listener = (type: string, data: unknown) => void;
const listeners = new Set<Listener>();
let source: EventSource | null = null;

export function startLive(onState: (connected: boolean) => void): void {
  if (source) return;
  source = new EventSource('/api/v1/events');
  source.onopen = () => onState(true);
  source.onerror = () => onState(false);
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
}

export function onLive(l: Listener): () => void {
  listeners.add(l);
  return () => void listeners.delete(l);
}
