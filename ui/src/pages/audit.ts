import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { q } from '../api.js';
import { useData, ErrorBox, Loading, when } from '../components.js';

interface Entry { id: string; time: string; kind: string; subject: string | null; record: Record<string, unknown> | null }

/** Every decision, action and alert, filterable, exportable as JSON lines. */
export function AuditPage() {
  const [kind, setKind] = useState('');
  const [text, setText] = useState('');
  const query = q({ kind, q: text, limit: 200 });
  const { data, error } = useData<{ entries: Entry[] }>(`/api/v1/audit${query}`, (t) => t === 'deployment');
  return html`<section aria-labelledby="h-audit"><h1 id="h-audit">Audit</h1>
    <form class="filters" role="search" onSubmit=${(e: Event) => e.preventDefault()}>
      <label>Kind <input value=${kind} placeholder="deploy.decision" onInput=${(e: Event) => setKind((e.target as HTMLInputElement).value)} /></label>
      <label>Containing <input type="search" value=${text} onInput=${(e: Event) => setText((e.target as HTMLInputElement).value)} /></label>
      <a class="button" href=${`/api/v1/audit${q({ kind, q: text, limit: 1000, format: 'jsonl' })}`} download="audit.jsonl">Export JSON lines</a>
    </form>
    <${ErrorBox} error=${error} />
    ${!data ? html`<${Loading} />` : html`<table data-testid="audit"><thead><tr><th scope="col">Time</th><th scope="col">Kind</th><th scope="col">Decision</th><th scope="col">Record</th></tr></thead>
      <tbody>${data.entries.map((e) => html`<tr><td>${when(e.time)}</td><td>${e.kind}</td>
        <td>${e.record?.decision ? String(e.record.decision) : ''} ${e.record?.code ? html`<code>${String(e.record.code)}</code>` : null}</td>
        <td class="record">${[e.record?.environment, e.record?.app].filter(Boolean).join('/')} ${String(e.record?.message ?? '')}</td></tr>`)}</tbody></table>`}
  </section>`;
}
