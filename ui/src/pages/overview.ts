import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { q } from '../api.js';
import { useData, StatusBadge, ErrorBox, Loading, short } from '../components.js';

interface Cell { last: { id: string; status: string; reason: string | null }; live: { id: string; imageDigest: string } | null; sync: string; health: string }
interface Overview { environments: string[]; apps: { app: string; environments: Record<string, Cell> }[]; next: string | null }

const SYNC_LABEL: Record<string, string> = { 'in-sync': 'in sync', 'out-of-sync': 'out of sync', progressing: 'progressing' };

/** Environments × apps: sync state, health and the last deploy's result, filtered and searchable. */
export function OverviewPage() {
  const [search, setSearch] = useState('');
  const [env, setEnv] = useState('');
  const [sync, setSync] = useState('');
  const [after, setAfter] = useState<string[]>([]);
  const { data, error } = useData<Overview>(`/api/v1/overview${q({ q: search.toLowerCase(), after: after[after.length - 1], limit: 100 })}`, (t) => t === 'deployment' || t.startsWith('host'));
  const envs = data ? data.environments.filter((e) => !env || e === env) : [];
  const rows = data ? data.apps.filter((a) => !sync || envs.some((e) => a.environments[e]?.sync === sync)) : [];
  return html`<section aria-labelledby="h-overview">
    <h1 id="h-overview">Overview</h1>
    <form class="filters" role="search" onSubmit=${(e: Event) => e.preventDefault()}>
      <label>Search apps <input type="search" value=${search} onInput=${(e: Event) => (setSearch((e.target as HTMLInputElement).value), setAfter([]))} /></label>
      <label>Environment <select value=${env} onChange=${(e: Event) => setEnv((e.target as HTMLSelectElement).value)}>
        <option value="">all</option>${(data?.environments ?? []).map((e) => html`<option value=${e}>${e}</option>`)}
      </select></label>
      <label>Sync <select value=${sync} onChange=${(e: Event) => setSync((e.target as HTMLSelectElement).value)}>
        <option value="">all</option><option value="in-sync">in sync</option><option value="out-of-sync">out of sync</option><option value="progressing">progressing</option>
      </select></label>
    </form>
    <${ErrorBox} error=${error} />
    ${!data ? html`<${Loading} />` : html`<table class="grid" data-testid="grid">
      <thead><tr><th scope="col">App</th>${envs.map((e) => html`<th scope="col">${e}</th>`)}</tr></thead>
      <tbody>${rows.map((a) => html`<tr>
        <th scope="row"><a href=${`#/app/${encodeURIComponent(a.app)}`}>${a.app}</a></th>
        ${envs.map((e) => {
          const c = a.environments[e];
          if (!c) return html`<td class="empty">—</td>`;
          return html`<td data-cell=${`${e}/${a.app}`}>
            <${StatusBadge} status=${c.sync} label=${SYNC_LABEL[c.sync] ?? c.sync} />
            <${StatusBadge} status=${c.health} />
            <div class="last"><a href=${`#/app/${encodeURIComponent(a.app)}`}>${c.last.status}</a>${c.last.reason ? html` <code>${c.last.reason}</code>` : null}</div>
            ${c.live ? html`<div class="digest" title=${c.live.imageDigest}>${short(c.live.imageDigest)}</div>` : null}
          </td>`;
        })}
      </tr>`)}</tbody>
    </table>
    ${rows.length === 0 ? html`<p>No deployments yet.</p>` : null}
    <nav class="pager" aria-label="Pages">
      ${after.length ? html`<button type="button" onClick=${() => setAfter(after.slice(0, -1))}>Previous</button>` : null}
      ${data.next ? html`<button type="button" onClick=${() => setAfter([...after, data.next as string])}>Next</button>` : null}
    </nav>`}
  </section>`;
}
