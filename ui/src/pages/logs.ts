import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, q, ApiError } from '../api.js';
import { ErrorBox } from '../components.js';

export interface LogTarget { hostId: string; host: string; container: string; environment: string }

/** What the pane keeps of a followed log (the newest text). */
const MAX_TEXT = 256 * 1024;

/**
 * The tail of the app's container log on one host. "Follow" opens the server's log stream
 * (`?follow=1`, server-sent events: the tail, then each new line as the host has it); the browser
 * resumes it after its end with Last-Event-ID. The server bounds follows per person and per host.
 */
export function LogTail({ targets }: { targets: LogTarget[] }) {
  const [choice, setChoice] = useState('');
  const [text, setText] = useState<string | null>(null);
  const [follow, setFollow] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const pane = useRef<HTMLPreElement>(null);
  // Following: the newest lines stay in view.
  useEffect(() => void (follow && pane.current && (pane.current.scrollTop = pane.current.scrollHeight)), [text, follow]);
  const selected = targets.find((t) => `${t.hostId}/${t.container}` === choice) ?? targets[0];
  const load = () => {
    if (!selected) return;
    api<{ text: string }>(`/api/v1/hosts/${encodeURIComponent(selected.hostId)}/logs${q({ container: selected.container, maxBytes: 65536 })}`).then((r) => (setText(r.text), setError(null)), (e) => setError(e as ApiError));
  };
  useEffect(() => {
    if (!follow || !selected) return;
    let kept = '';
    setText('');
    const source = new EventSource(`/api/v1/hosts/${encodeURIComponent(selected.hostId)}/logs${q({ container: selected.container, maxBytes: 65536, follow: 1 })}`);
    source.addEventListener('log', (e) => {
      try {
        kept = `${kept}${(JSON.parse((e as MessageEvent).data) as { text: string }).text}\n`.slice(-MAX_TEXT);
      } catch {
        return;
      }
      setText(kept);
      setError(null);
    });
    source.addEventListener('unavailable', () => setError(new ApiError(503, 'HOST_UNAVAILABLE', 'the host does not answer; still following')));
    source.addEventListener('gone', () => (source.close(), setError(new ApiError(404, 'CONTAINER_NOT_FOUND', 'the container is gone from this host'))));
    // A refusal (429 LOG_FOLLOW_LIMIT, 403) closes the stream for good; a dropped one is retried by the browser.
    source.onerror = () => void (source.readyState === EventSource.CLOSED && setError(new ApiError(0, 'FOLLOW_CLOSED', 'the server refused or closed the log stream (too many open follows?)')));
    return () => source.close();
  }, [follow, selected?.container, selected?.hostId]);
  if (targets.length === 0) return null;
  return html`<section aria-labelledby="h-logs"><h2 id="h-logs">Container log</h2>
    <label>Container <select value=${choice} onChange=${(e: Event) => setChoice((e.target as HTMLSelectElement).value)}>
      ${targets.map((t) => html`<option value=${`${t.hostId}/${t.container}`}>${t.environment} on ${t.host}</option>`)}
    </select></label>
    <button type="button" onClick=${load}>Show log</button>
    <label><input type="checkbox" checked=${follow} onChange=${(e: Event) => setFollow((e.target as HTMLInputElement).checked)} /> Follow</label>
    <${ErrorBox} error=${error} />
    ${text !== null ? html`<pre class="log" data-testid="log" tabindex="0" ref=${pane}>${text}</pre>` : null}
  </section>`;
}
