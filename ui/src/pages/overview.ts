import { html } from 'htm/preact';
import { useMemo, useState } from 'preact/hooks';
import { q } from '../api.js';
import { OVERVIEW_PATH } from '../first-load.js';
import { h } from 'preact';
import { useData, badge, ErrorBox, Loading } from '../components.js';

interface Cell { last: { id: string; status: string; reason: string | null }; live: { id: string; imageDigest: string } | null; sync: string; health: string }
interface Overview { environments: string[]; apps: { app: string; environments: Record<string, Cell> }[]; next: string | null }

const SYNC_LABEL: Record<string, string> = { 'in-sync': 'in sync', 'out-of-sync': 'out of sync', progressing: 'progressing' };

/** The grid's API call; the first page's is started by boot.js (first-load.ts). */
const overviewPath = (search: string, after?: string) => (search || after ? `/api/v1/overview${q({ q: search.toLowerCase(), after, limit: 100 })}` : OVERVIEW_PATH);

/**
 * The grid's rows: 100 apps × every environment on a page, built with `h` (no template to walk,
 * no component per badge); the page keeps them while its data is unchanged, and Preact skips an
 * unchanged vnode. Rows are ARIA table rows laid out by CSS grid with `content-visibility: auto`:
 * the browser lays out and paints the rows on screen, the others when scrolled to
 * (bench/dashboard.bench.ts).
 */
const gridBody = (rows: Overview['apps'], envs: string[]) => h('div', { role: 'rowgroup', class: 'grid-body' }, rows.map((a) => {
  const href = `#/app/${encodeURIComponent(a.app)}`;
  return h('div', { key: a.app, role: 'row', class: 'grid-row' }, h('div', { role: 'rowheader' }, h('a', { href }, a.app)), envs.map((e) => {
    const c = a.environments[e];
    if (!c) return h('div', { role: 'cell', class: 'empty' }, '—');
    return h('div', { role: 'cell', 'data-cell': `${e}/${a.app}` },
      badge(c.sync, SYNC_LABEL[c.sync] ?? c.sync), badge(c.health),
      h('a', { class: 'last', href }, c.last.reason ? `${c.last.status} ${c.last.reason}` : c.last.status));
  }));
}));

interface SyncStatus { configured: boolean; applied: { commit: string; at: string } | null; last: { commit: string | null; outcome: string; message: string | null; at: string } | null }

/**
 * The desired-state commit in force and, when the last reconcile did not apply its head (a YAML
 * error, a rewritten history, an unsigned commit, git failing), why: Argo CD's sync status.
 */
function DesiredState() {
  const { data } = useData<SyncStatus>('/api/v1/sync', (t) => t === 'sync');
  if (!data?.configured) return null;
  const last = data.last;
  const failed = last && last.outcome !== 'applied' && last.outcome !== 'up-to-date' ? last : null;
  return html`<p class="desired-state" data-testid="desired-state">Desired state: ${data.applied ? html`commit <code>${data.applied.commit.slice(0, 12)}</code> applied ${data.applied.at}` : 'no commit applied yet'}${failed
    ? html`<span class="error" role="alert"> — ${failed.commit ? html`commit <code>${failed.commit.slice(0, 12)}</code> ` : ''}not applied (${failed.outcome}): ${failed.message ?? ''}</span>`
    : null}</p>`;
}

/** Environments × apps: sync state, health and the last deploy's result, filtered and searchable. */
export function OverviewPage() {
  const [search, setSearch] = useState('');
  const [env, setEnv] = useState('');
  const [sync, setSync] = useState('');
  const [after, setAfter] = useState<string[]>([]);
  const { data, error } = useData<Overview>(overviewPath(search, after[after.length - 1]), (t) => t === 'deployment' || t.startsWith('host'));
  const envs = useMemo(() => (data ? data.environments.filter((e) => !env || e === env) : []), [data, env]);
  const rows = useMemo(() => (data ? data.apps.filter((a) => !sync || envs.some((e) => a.environments[e]?.sync === sync)) : []), [data, envs, sync]);
  const body = useMemo(() => gridBody(rows, envs), [rows, envs]);
  return html`<section aria-labelledby="h-overview">
    <h1 id="h-overview">Overview</h1>
    <${DesiredState} />
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
    ${!data ? html`<${Loading} />` : html`<div class="grid" role="table" aria-label="Apps by environment" data-testid="grid">
      <div role="rowgroup"><div role="row" class="grid-row grid-head"><div role="columnheader">App</div>${envs.map((e) => html`<div role="columnheader">${e}</div>`)}</div></div>
      ${body}</div>
    ${rows.length === 0 ? html`<p>No deployments yet.</p>` : null}
    <nav class="pager" aria-label="Pages">
      ${after.length ? html`<button type="button" onClick=${() => setAfter(after.slice(0, -1))}>Previous</button>` : null}
      ${data.next ? html`<button type="button" onClick=${() => setAfter([...after, data.next as string])}>Next</button>` : null}
    </nav>`}
  </section>`;
}
