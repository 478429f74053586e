import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { api, q, ApiError, type Me } from '../api.js';
import { useData, StatusBadge, ErrorBox, Loading, short, when, duration } from '../components.js';
import { LogTail } from './logs.js';

interface Deployment { id: string; environment: string; app: string; commit: string; commitAuthor: string | null; commitMessage: string | null; bundleDigest: string | null; signers: string[]; reference: string; imageDigest: string | null; status: string; reason: string | null; message: string | null; rollbackOf: string | null; createdAt: string; updatedAt: string }
interface Cell { sync: string; health: string; container: string; live: { id: string; imageDigest: string } | null; hosts: { hostId: string; host: string; imageDigest: string | null; state: string; health: string | null }[] }

/** One app: its deployments in every environment, what runs where, and the operator's actions. */
export function AppPage({ app, me }: { app: string; me: Me }) {
  const [notice, setNotice] = useState<string | null>(null);
  const [failure, setFailure] = useState<ApiError | null>(null);
  const concerns = (t: string, d: unknown) => t.startsWith('host') || (t === 'deployment' && (d as { app?: string })?.app === app);
  const history = useData<{ deployments: Deployment[] }>(`/api/v1/deployments${q({ app, limit: 100 })}`, concerns);
  const grid = useData<{ environments: string[]; apps: { app: string; environments: Record<string, Cell> }[] }>(`/api/v1/overview${q({ app, limit: 1, hosts: 1 })}`, concerns);
  const cells = grid.data?.apps.find((a) => a.app === app)?.environments ?? {};
  const act = async (what: string, path: string, body?: unknown) => {
    setNotice(null);
    setFailure(null);
    try {
      const out = await api<{ results?: { hostId: string; state?: string; code?: string }[] } | undefined>(path, { method: 'POST', body });
      // Container actions answer with each host's outcome; deploys and syncs are queued.
      const hostName = (id: string) => Object.values(cells).flatMap((c) => c.hosts).find((h) => h.hostId === id)?.host ?? id;
      setNotice(out?.results ? `${what}: ${out.results.map((r) => `${r.state ?? r.code} on ${hostName(r.hostId)}`).join(', ')}` : `${what}: queued`);
    } catch (e) {
      setFailure(e as ApiError);
    }
  };
  const rows = history.data?.deployments ?? [];
  const newest = new Map<string, string>();
  for (const d of rows) if (!newest.has(d.environment)) newest.set(d.environment, d.id);
  return html`<section aria-labelledby="h-app">
    <h1 id="h-app">App <span class="name">${app}</span></h1>
    ${notice ? html`<p class="notice" role="status">${notice}</p>` : null}
    <${ErrorBox} error=${failure ?? history.error} />
    <h2>Desired and live</h2>
    <table><thead><tr><th scope="col">Environment</th><th scope="col">Sync</th><th scope="col">Health</th><th scope="col">Live image</th><th scope="col">Hosts</th>${me.can.deploy ? html`<th scope="col">Lifecycle</th>` : null}</tr></thead>
      <tbody>${Object.entries(cells).map(([env, c]) => html`<tr>
        <th scope="row">${env}</th><td><${StatusBadge} status=${c.sync} /></td><td><${StatusBadge} status=${c.health} /></td>
        <td class="digest">${short(c.live?.imageDigest)}</td>
        <td>${c.hosts.map((h) => html`<div>${h.host}: ${h.state}${h.imageDigest && h.imageDigest !== c.live?.imageDigest ? html` <strong>drift (${short(h.imageDigest)})</strong>` : null}${h.health && h.health !== 'none' ? ` (${h.health})` : ''}</div>`)}</td>
        ${me.can.deploy ? html`<td>${c.live ? ['stop', 'start', 'restart'].map((a) => html`<button type="button" aria-label=${`${a} ${app} in ${env}`} onClick=${() => act(a[0].toUpperCase() + a.slice(1), `/api/v1/deployments/${encodeURIComponent(c.live?.id ?? '')}/actions`, { action: a })}>${a}</button> `) : null}</td>` : null}
      </tr>`)}</tbody></table>
    ${me.can.deploy ? html`<p><button type="button" onClick=${() => act('Sync', '/api/v1/sync')}>Sync now</button></p>` : null}
    <h2>Deployments</h2>
    ${!history.data ? html`<${Loading} />` : html`<table data-testid="history">
      <thead><tr><th scope="col">When</th><th scope="col">Environment</th><th scope="col">Status</th><th scope="col">Decision</th><th scope="col">Commit</th><th scope="col">Signed by</th><th scope="col">Bundle</th><th scope="col">Duration</th><th scope="col">Actions</th></tr></thead>
      <tbody>${rows.map((d) => html`<tr data-deployment=${d.id}>
        <td>${when(d.createdAt)}</td><td>${d.environment}</td>
        <td><${StatusBadge} status=${d.status} /></td>
        <td class="decision">${d.reason ? html`<code data-reason>${d.reason}</code> ` : null}<span data-message>${d.message ?? ''}</span></td>
        <td class="commit"><code title=${d.commit}>${d.commit.replace(/^api:/, '').slice(0, 12)}</code>${d.commitMessage ? html` <span data-commit-message title=${d.commitMessage}>${d.commitMessage.split('\n')[0]}</span>` : null}${d.commitAuthor ? html`<div class="author" data-commit-author>${d.commitAuthor}</div>` : null}</td>
        <td class="signers" data-signers>${d.signers.map((s) => html`<div>${s}</div>`)}</td>
        <td class="digest" title=${`bundle ${d.bundleDigest ?? '—'}, image ${d.imageDigest ?? '—'}`} data-bundle>${short(d.bundleDigest)}</td>
        <td>${duration(d.createdAt, d.updatedAt)}</td>
        <td class="actions">
          <a href=${`#/evidence/${d.id}`}>Evidence</a>
          ${me.can.deploy && d.id === newest.get(d.environment) && d.status !== 'queued' ? html` <button type="button" onClick=${() => act('Rollback', `/api/v1/deployments/${encodeURIComponent(d.id)}/rollback`)}>Roll back</button>` : null}
          ${me.can.deploy && d.status === 'succeeded' && d.id !== newest.get(d.environment) ? html` <button type="button" onClick=${() => act('Redeploy', '/api/v1/deployments', { environment: d.environment, app: d.app, bundle: d.reference })}>Redeploy</button>` : null}
        </td>
      </tr>`)}</tbody></table>`}
    ${me.can.deploy ? html`<${LogTail} targets=${Object.entries(cells).flatMap(([environment, c]) => c.hosts.map((h) => ({ hostId: h.hostId, host: h.host, container: c.container, environment })))} />` : null}
  </section>`;
}
