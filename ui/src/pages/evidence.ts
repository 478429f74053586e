import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { useData, ErrorBox, Loading, short, when } from '../components.js';

interface Signer { kind: string; keyId?: string; roles?: string[]; issuer?: string; subject?: string }
interface LogEntry { operator: string; logIndex: number; integratedTime: number; kind: string; logId: string }
interface Attestation { digest: string; source: string; predicateType: string; predicate: Record<string, unknown>; signers: Signer[]; logEntries: LogEntry[] }
interface EvidenceView {
  id: string; environment: string; app: string; imageDigest: string | null; bundleDigest: string | null; container: string;
  evidence: { attestations: Attestation[]; fetchedReference?: string } | null;
  bundle: { security?: { seccomp?: { defaultAction?: string; syscalls?: { names: string[]; action: string }[] }; apparmor?: string; selinux?: string; monitor?: boolean } } | null;
  alerts: Record<string, unknown>[];
}

const get = (o: unknown, ...path: string[]): unknown => path.reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), o);

/** SBOM packages from an SPDX or CycloneDX predicate. */
function packagesOf(atts: Attestation[]): { name: string; version: string }[] {
  const out: { name: string; version: string }[] = [];
  for (const a of atts) {
    const p = a.predicate;
    for (const x of (Array.isArray(p?.packages) ? p.packages : Array.isArray(p?.components) ? p.components : []) as Record<string, unknown>[]) {
      out.push({ name: String(x.name ?? ''), version: String(x.versionInfo ?? x.version ?? '') });
    }
  }
  return out.slice(0, 5000);
}

/** SLSA provenance: who built it, from what source. */
function provenanceOf(atts: Attestation[]) {
  const a = atts.find((x) => /slsa\.dev\/provenance/.test(x.predicateType));
  if (!a) return null;
  const builder = get(a.predicate, 'runDetails', 'builder', 'id') ?? get(a.predicate, 'builder', 'id');
  const deps = get(a.predicate, 'buildDefinition', 'resolvedDependencies') ?? get(a.predicate, 'materials');
  const source = Array.isArray(deps) && deps[0] ? String((deps[0] as Record<string, unknown>).uri ?? '') : String(get(a.predicate, 'buildDefinition', 'externalParameters', 'source') ?? '');
  return { builder: String(builder ?? 'unknown'), source: source || 'unknown', buildType: String(get(a.predicate, 'buildDefinition', 'buildType') ?? get(a.predicate, 'buildType') ?? '') };
}

/** Everything verified about one deployment: signatures, log entries, provenance, SBOM, profiles, alerts. */
export function EvidencePage({ id }: { id: string }) {
  const { data, error } = useData<EvidenceView>(`/api/v1/deployments/${encodeURIComponent(id)}/evidence`);
  const [filter, setFilter] = useState('');
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!data) return html`<${Loading} />`;
  const atts = data.evidence?.attestations ?? [];
  const prov = provenanceOf(atts);
  const pkgs = packagesOf(atts).filter((p) => !filter || p.name.toLowerCase().includes(filter.toLowerCase()));
  const seccomp = data.bundle?.security?.seccomp;
  const allowed = (seccomp?.syscalls ?? []).filter((s) => /ALLOW/.test(s.action)).flatMap((s) => s.names);
  return html`<section aria-labelledby="h-ev">
    <h1 id="h-ev">Evidence of <a href=${`#/app/${encodeURIComponent(data.app)}`}>${data.app}</a> in ${data.environment}</h1>
    <dl class="facts"><dt>Deployment</dt><dd><code>${data.id}</code></dd><dt>Image</dt><dd class="digest">${data.imageDigest ?? '—'}</dd><dt>Bundle</dt><dd class="digest">${data.bundleDigest ?? '—'}</dd><dt>Fetched from</dt><dd>${data.evidence?.fetchedReference ?? '—'}</dd></dl>
    ${!data.evidence ? html`<p>No verified evidence: this deployment was not verified (see its decision).</p>` : null}
    <h2>Signatures</h2>
    <table data-testid="signatures"><thead><tr><th scope="col">Attestation</th><th scope="col">Type</th><th scope="col">Signed by</th></tr></thead>
      <tbody>${atts.map((a) => html`<tr><td class="digest">${short(a.digest)}</td><td>${a.predicateType}</td>
        <td>${a.signers.map((s) => html`<div>${s.kind === 'key' ? html`key <code>${short(s.keyId, 16)}</code>${s.roles?.length ? ` (${s.roles.join(', ')})` : ''}` : html`${s.subject} <small>via ${s.issuer}</small>`}</div>`)}</td></tr>`)}</tbody></table>
    <h2>Transparency log entries</h2>
    <table data-testid="tlog"><thead><tr><th scope="col">Operator</th><th scope="col">Log</th><th scope="col">Index</th><th scope="col">Integrated</th></tr></thead>
      <tbody>${atts.flatMap((a) => a.logEntries).map((e) => html`<tr><td>${e.operator}</td><td>${e.kind} <code>${short(e.logId)}</code></td><td>${e.logIndex}</td><td>${when(new Date(e.integratedTime * 1000).toISOString())}</td></tr>`)}</tbody></table>
    <h2>Provenance</h2>
    ${prov ? html`<dl class="facts"><dt>Builder</dt><dd>${prov.builder}</dd><dt>Source</dt><dd>${prov.source}</dd><dt>Build type</dt><dd>${prov.buildType}</dd></dl>` : html`<p>No SLSA provenance attestation.</p>`}
    <h2>SBOM packages</h2>
    <label>Search packages <input type="search" value=${filter} onInput=${(e: Event) => setFilter((e.target as HTMLInputElement).value)} /></label>
    <ul class="packages">${pkgs.slice(0, 500).map((p) => html`<li>${p.name} ${p.version}</li>`)}</ul>
    ${pkgs.length === 0 ? html`<p>No SBOM packages.</p>` : null}
    <h2>Confinement</h2>
    <dl class="facts">
      <dt>seccomp</dt><dd>${seccomp ? html`default ${seccomp.defaultAction ?? '—'}, ${allowed.length} syscalls allowed: <span class="syscalls">${allowed.join(' ')}</span>` : 'no profile in the bundle'}</dd>
      <dt>AppArmor</dt><dd>${data.bundle?.security?.apparmor ? 'profile in the bundle (enforced where the host can)' : 'no profile'}</dd>
      <dt>SELinux</dt><dd>${data.bundle?.security?.selinux ? 'policy in the bundle (enforced where the host can)' : 'no policy'}</dd>
      <dt>eBPF monitor</dt><dd>${data.bundle?.security?.monitor ? 'rules in the bundle' : 'none'}</dd>
    </dl>
    <h2>Monitor alerts</h2>
    ${data.alerts.length ? html`<ul>${data.alerts.map((a) => html`<li>${String(a.time)} ${String(a.host)}: ${alertText(a)}</li>`)}</ul>` : html`<p>No alerts for container <code>${data.container}</code>.</p>`}
  </section>`;
}

/** What a host said (its event's one-line detail), else the whole record as JSON. */
function alertText(a: Record<string, unknown>): string {
  const detail = (a.event as { detail?: unknown } | undefined)?.detail;
  return typeof detail === 'string' ? detail : JSON.stringify(a);
}
