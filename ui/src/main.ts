import { html } from 'htm/preact';
import { render } from 'preact';
import { useEffect, useLayoutEffect, useState } from 'preact/hooks';
import { api, ApiError, setCsrf, type Me } from './api.js';
import { onConnection, startLive, stopLive } from './live.js';
import { SESSION_PATH } from './first-load.js';
import { OverviewPage } from './pages/overview.js';
import { AppPage } from './pages/app.js';
import { EvidencePage } from './pages/evidence.js';
import { HostsPage } from './pages/hosts.js';
import { PoliciesPage } from './pages/policies.js';
import { AuditPage } from './pages/audit.js';

/** Hash routes (`#/app/hello`): the server serves one page, the rest is the front end's. */
function useRoute(): string[] {
  const read = () => location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const [route, setRoute] = useState(read());
  useEffect(() => {
    const on = () => setRoute(read());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

function SignIn() {
  const [issuers, setIssuers] = useState<{ index: number; name: string }[] | null>(null);
  useEffect(() => void api<{ issuers: { index: number; name: string }[] }>('/auth/issuers').then((r) => setIssuers(r.issuers), () => setIssuers([])), []);
  const back = encodeURIComponent(`/${location.hash}`);
  return html`<main class="login" id="main"><h1>Cerro Torre</h1><p>Sign in to see what runs where, and why it was allowed.</p>
    ${issuers?.map((i) => html`<p><a class="button" href=${`/auth/login?issuer=${i.index}&returnTo=${back}`}>Sign in with ${i.name}</a></p>`)}
    ${issuers && issuers.length === 0 ? html`<p>No sign-in issuer is configured (<code>login.oidc</code> in CT_CONFIG).</p>` : null}
  </main>`;
}

function LiveIndicator() {
  const [live, setLive] = useState(false);
  useEffect(() => onConnection(setLive), []);
  return html`<span class=${`live ${live ? 'on' : 'off'}`} data-live=${live}>${live ? 'live' : 'offline'}</span>`;
}

function Shell() {
  const [me, setMe] = useState<Me | null>(null);
  const [anonymous, setAnonymous] = useState(false);
  const route = useRoute();
  // Started as soon as the shell is committed (the request itself is boot.js's, already in flight).
  useLayoutEffect(() => {
    api<Me>(SESSION_PATH).then(
      (m) => (setCsrf(m.csrfToken), setMe(m), startLive()),
      (e) => setAnonymous(e instanceof ApiError && e.status === 401),
    );
  }, []);
  if (anonymous) return html`<${SignIn} />`;
  if (!me) return html`<p class="loading">Loading…</p>`;
  const signOut = async () => {
    await api('/auth/logout', { method: 'POST' }).catch(() => undefined);
    stopLive();
    setCsrf(null);
    setMe(null);
    setAnonymous(true);
    location.hash = '';
  };
  const [page, arg] = route;
  const nav = [['', 'Overview'], ['hosts', 'Hosts'], ['policies', 'Policies'], ...(me.can.audit ? [['audit', 'Audit']] : [])];
  return html`<header class="top">
      <a class="brand" href="#/">Cerro Torre</a>
      <nav aria-label="Main">${nav.map(([p, label]) => html`<a href=${`#/${p}`} aria-current=${(page || '') === p ? 'page' : undefined}>${label}</a>`)}</nav>
      <${LiveIndicator} />
      <span class="who">${me.name} <span class="role" data-role=${me.role}>${me.role}</span></span>
      ${me.kind === 'session' ? html`<button type="button" onClick=${signOut}>Sign out</button>` : null}
    </header>
    <main id="main">${
      page === 'app' && arg ? html`<${AppPage} key=${arg} app=${arg} me=${me} />`
      : page === 'evidence' && arg ? html`<${EvidencePage} key=${arg} id=${arg} />`
      : page === 'hosts' ? html`<${HostsPage} />`
      : page === 'policies' ? html`<${PoliciesPage} />`
      : page === 'audit' ? html`<${AuditPage} />`
      : html`<${OverviewPage} />`
    }</main>`;
}

const root = document.getElementById('root');
if (root) {
  root.textContent = '';
  render(html`<${Shell} />`, root);
}
