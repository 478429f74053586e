import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { api, q, ApiError } from '../api.js';
import { ErrorBox } from '../components.js';

interface Host { id: string; name: string; containers: { id: string; app: string | null }[] }

/** The tail of the app's container log on one host; "follow" asks again every two seconds. */
export function LogTail({ app, environments }: { app: string; environments: string[] }) {
  const [hosts, setHosts] = useState<Host[]>([]);
  const [choice, setChoice] = useState('');
  const [text, setText] = useState<string | null>(null);
  const [follow, setFollow] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  useEffect(() => void api<{ hosts: Host[] }>('/api/v1/hosts').then((h) => setHosts(h.hosts), () => undefined), [app]);
  const targets = hosts.flatMap((h) => h.containers.filter((c) => c.app === app || environments.some((e) => c.id.startsWith(`ct-${e}-${app}`))).map((c) => ({ host: h, container: c.id })));
  const selected = targets.find((t) => `${t.host.id}/${t.container}` === choice) ?? targets[0];
  const load = () => {
    if (!selected) return;
    api<{ text: string }>(`/api/v1/hosts/${encodeURIComponent(selected.host.id)}/logs${q({ container: selected.container, maxBytes: 65536 })}`).then((r) => (setText(r.text), setError(null)), (e) => setError(e as ApiError));
  };
  useEffect(() => {
    if (!follow) return;
    load();
    const t = setInterval(load, 2000);
    return () => clearInterval(t);
  }, [follow, selected?.container, selected?.host.id]);
  if (targets.length === 0) return null;
  return html`<section aria-labelledby="h-logs"><h2 id="h-logs">Container log</h2>
    <label>Container <select value=${choice} onChange=${(e: Event) => setChoice((e.target as HTMLSelectElement).value)}>
      ${targets.map((t) => html`<option value=${`${t.host.id}/${t.container}`}>${t.host.name}: ${t.container}</option>`)}
    </select></label>
    <button type="button" onClick=${load}>Show log</button>
    <label><input type="checkbox" checked=${follow} onChange=${(e: Event) => setFollow((e.target as HTMLInputElement).checked)} /> Follow</label>
    <${ErrorBox} error=${error} />
    ${text !== null ? html`<pre class="log" data-testid="log" tabindex="0">${text}</pre>` : null}
  </section>`;
}
