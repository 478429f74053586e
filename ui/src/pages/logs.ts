import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, q, ApiError } from '../api.js';
import { ErrorBox } from '../components.js';

export interface LogTarget { hostId: string; host: string; container: string; environment: string }

/** The tail of the app's container log on one host; "follow" asks again every two seconds. */
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
    if (!follow) return;
    load();
    const t = setInterval(load, 2000);
    return () => clearInterval(t);
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
