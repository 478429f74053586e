import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { api, q, ApiError } from '../api.js';
import { useData, ErrorBox, Loading, when } from '../components.js';

interface Entry { id: string; time: string; kind: string; subject: string | null; record: Record<string, unknown> | null }
interface Page { entries: Entry[]; next: string | null; truncated: boolean }

/** Pages one export follows at most (1,000 records each): a bounded download, and a note when cut. */
const EXPORT_PAGES = 20;

/** Every record the filters match, following `next` up to EXPORT_PAGES pages; whether more remained. */
async function exportPages(kind: string, text: string): Promise<{ lines: string[]; cut: boolean }> {
  const lines: string[] = [];
  let before: string | null = null;
  for (let i = 0; i < EXPORT_PAGES; i++) {
    const page: Page = await api<Page>(`/api/v1/audit${q({ kind, q: text, limit: 1000, before })}`);
    lines.push(...page.entries.map((e) => JSON.stringify(e)));
    before = page.next;
    if (!before) return { lines, cut: false };
  }
  return { lines, cut: true };
}

/** Every decision, action and alert, filterable, exportable as JSON lines. */
export function AuditPage() {
  const [kind, setKind] = useState('');
  const [text, setText] = useState('');
  const [note, setNote] = useState<string | null>(null);
  const [failed, setFailed] = useState<ApiError | null>(null);
  const query = q({ kind, q: text, limit: 200 });
  const { data, error } = useData<Page>(`/api/v1/audit${query}`, (t) => t === 'deployment');
  const exportAll = async () => {
    setNote('Exporting…');
    setFailed(null);
    try {
      const { lines, cut } = await exportPages(kind, text);
      const a = document.createElement('a');
      a.href = URL.createObjectURL(new Blob(lines.map((l) => l + '\n'), { type: 'application/x-ndjson' }));
      a.download = 'audit.jsonl';
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
      // A cut export says so: an auditor must not take the newest N records for all of them.
      setNote(cut ? `Exported the newest ${lines.length} matching records; older ones remain (narrow the kind or the text to export them).` : `Exported ${lines.length} records.`);
    } catch (e) {
      setNote(null);
      setFailed(e instanceof ApiError ? e : new ApiError(0, 'EXPORT_FAILED', String(e)));
    }
  };
  return html`<section aria-labelledby="h-audit"><h1 id="h-audit">Audit</h1>
    <form class="filters" role="search" onSubmit=${(e: Event) => e.preventDefault()}>
      <label>Kind <input value=${kind} placeholder="deploy.decision" onInput=${(e: Event) => setKind((e.target as HTMLInputElement).value)} /></label>
      <label>Containing <input type="search" value=${text} onInput=${(e: Event) => setText((e.target as HTMLInputElement).value)} /></label>
      <button type="button" onClick=${exportAll}>Export JSON lines</button>
    </form>
    ${note ? html`<p class="notice" role="status">${note}</p>` : null}
    <${ErrorBox} error=${error ?? failed} />
    ${!data ? html`<${Loading} />` : html`<table data-testid="audit"><thead><tr><th scope="col">Time</th><th scope="col">Kind</th><th scope="col">Decision</th><th scope="col">Record</th></tr></thead>
      <tbody>${data.entries.map((e) => html`<tr><td>${when(e.time)}</td><td>${e.kind}</td>
        <td>${e.record?.decision ? String(e.record.decision) : ''} ${e.record?.code ? html`<code>${String(e.record.code)}</code>` : null}</td>
        <td class="record">${[e.record?.environment, e.record?.app].filter(Boolean).join('/')} ${String(e.record?.message ?? '')}</td></tr>`)}</tbody></table>
      ${data.truncated ? html`<p class="notice" role="status" data-testid="audit-more">The search read its newest 10,000 records and stopped: older matches may exist (narrow the kind, or export).</p>` : data.next ? html`<p class="notice" role="status" data-testid="audit-more">The newest ${data.entries.length} records; older ones exist (export follows them).</p>` : null}`}
  </section>`;
}
