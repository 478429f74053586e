import { html } from 'htm/preact';
import { useData, StatusBadge, ErrorBox, Loading, short, when } from '../components.js';

interface Host {
  id: string; name: string; labels: Record<string, string>; connected: boolean; lastSeen: string | null;
  facts: { kernel?: string; architecture?: string; seccomp?: { available: boolean }; apparmor?: { enforcing: boolean; present: boolean }; ebpf?: { usable: boolean }; selinux?: { enforcing?: boolean } };
  containers: { id: string; app: string | null; imageDigest: string | null; state: string; health?: string; suspended?: boolean }[];
}

const yes = (b: unknown) => (b ? 'yes' : 'no');

/** Every enrolled host: facts, what it can enforce, whether it is connected, what it runs. */
export function HostsPage() {
  const { data, error } = useData<{ hosts: Host[] }>('/api/v1/hosts', (t) => t.startsWith('host'));
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!data) return html`<${Loading} />`;
  return html`<section aria-labelledby="h-hosts"><h1 id="h-hosts">Hosts</h1>
    ${data.hosts.length === 0 ? html`<p>No host enrolled yet (<code>ct host enroll</code>).</p>` : null}
    ${data.hosts.map((h) => html`<article class="host" aria-label=${`host ${h.name}`}>
      <h2>${h.name} <${StatusBadge} status=${h.connected ? 'connected' : 'disconnected'} /></h2>
      <dl class="facts">
        <dt>Labels</dt><dd>${Object.entries(h.labels).map(([k, v]) => `${k}=${v}`).join(', ') || '—'}</dd>
        <dt>Kernel</dt><dd>${h.facts.kernel ?? '—'} (${h.facts.architecture ?? '—'})</dd>
        <dt>seccomp</dt><dd>${yes(h.facts.seccomp?.available)}</dd>
        <dt>AppArmor enforcing</dt><dd>${yes(h.facts.apparmor?.enforcing)}</dd>
        <dt>SELinux enforcing</dt><dd>${yes(h.facts.selinux?.enforcing)}</dd>
        <dt>eBPF monitor</dt><dd>${yes(h.facts.ebpf?.usable)}</dd>
        <dt>Last seen</dt><dd>${when(h.lastSeen)}</dd>
      </dl>
      <table><caption>Containers</caption><thead><tr><th scope="col">Container</th><th scope="col">App</th><th scope="col">Image</th><th scope="col">State</th></tr></thead>
        <tbody>${h.containers.map((c) => html`<tr><td><code>${c.id}</code></td><td>${c.app ?? '—'}</td><td class="digest">${short(c.imageDigest)}</td><td><${StatusBadge} status=${c.suspended ? 'suspended' : c.health ?? c.state} /></td></tr>`)}</tbody></table>
    </article>`)}
  </section>`;
}
