import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { api, ApiError } from '../api.js';
import { useData, ErrorBox, Loading, short, StatusBadge } from '../components.js';

interface Impact { counts: Record<string, number>; deployments: { id: string; environment: string; app: string; change: string; before: string; after: string }[]; truncated: boolean }

/** The policy set in force, and what a proposed change (a pull request's files) would do to live deployments. */
export function PoliciesPage() {
  const { data, error } = useData<{ loaded: boolean; digest: string | null; source?: string; commit?: string | null; policies: { name: string; digest: string }[] }>('/api/v1/policies');
  const [path, setPath] = useState('policies/proposed.rego');
  const [text, setText] = useState('');
  const [impact, setImpact] = useState<Impact | null>(null);
  const [failure, setFailure] = useState<ApiError | null>(null);
  const run = async (e: Event) => {
    e.preventDefault();
    setFailure(null);
    try {
      setImpact(await api<Impact>('/api/v1/policies/impact', { method: 'POST', body: { files: [{ path, text }] } }));
    } catch (x) {
      setFailure(x as ApiError);
    }
  };
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!data) return html`<${Loading} />`;
  return html`<section aria-labelledby="h-pol"><h1 id="h-pol">Policies</h1>
    <p>${data.loaded ? html`Set <code>${short(data.digest, 16)}</code>${data.commit ? html` at commit <code data-policy-commit title=${data.commit}>${data.commit.slice(0, 12)}</code>` : data.source === 'directory' ? ' (read from a directory, not a git repository: no commit)' : null}` : 'No policy set loaded: every decision denies.'}</p>
    <table><thead><tr><th scope="col">Policy</th><th scope="col">Digest</th></tr></thead>
      <tbody>${data.policies.map((p) => html`<tr><td>${p.name}</td><td class="digest">${short(p.digest, 16)}</td></tr>`)}</tbody></table>
    <h2>Impact of a proposed change</h2>
    <form onSubmit=${run} class="impact">
      <label>File path <input value=${path} onInput=${(e: Event) => setPath((e.target as HTMLInputElement).value)} /></label>
      <label>Policy text (from the pull request) <textarea rows="8" value=${text} onInput=${(e: Event) => setText((e.target as HTMLTextAreaElement).value)}></textarea></label>
      <button type="submit">Show impact on live deployments</button>
    </form>
    <${ErrorBox} error=${failure} />
    ${impact ? html`<p>${Object.entries(impact.counts).map(([k, v]) => `${k}: ${v}`).join(' · ')}</p>
      <table data-testid="impact"><thead><tr><th scope="col">Deployment</th><th scope="col">Change</th><th scope="col">Before</th><th scope="col">After</th></tr></thead>
      <tbody>${impact.deployments.map((d) => html`<tr><td>${d.environment}/${d.app}</td><td><${StatusBadge} status=${d.change} /></td><td>${d.before}</td><td>${d.after}</td></tr>`)}</tbody></table>` : null}
  </section>`;
}
