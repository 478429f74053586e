/**
 * `/api/v1/events` is authenticated when it opens and judged again while it stays open: signing
 * out, a session expiring or an API key being revoked ends the stream (as a new request would be
 * refused), and every stream ends after its maximum duration.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { testServer } from './support.js';
import { createApiKey } from '../../server/auth/api-keys.js';
import { createSession } from '../../server/ui/sessions.js';

// The sessions' issuer must be configured (never contacted: no login is started here).
const IDP = { issuer: 'https://idp.test', clientId: 'ct-dashboard', groupsClaim: 'groups', roles: { ops: 'admin' as const } };
import { publish } from '../../server/context.js';
import type { RunningServer } from '../../server/start.js';
import { openEventStream, type EventStream } from '../support/event-stream.js';

function open(server: RunningServer, headers: Record<string, string>): Promise<EventStream> {
  return openEventStream(`${server.url}/api/v1/events`, headers);
}

async function until(what: string, fn: () => boolean): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (fn()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const END_UNAUTHENTICATED = 'event: end\ndata: {"reason":"UNAUTHENTICATED"}\n\n';

describe('an open event stream follows its credentials', () => {
  let server: RunningServer;
  beforeAll(async () => void (server = await testServer({ events: { recheckMs: 100 }, login: { oidc: [IDP] } })));
  afterAll(async () => server?.close());

  const who = { subject: 'alice', name: 'Alice', issuer: 'https://idp.test', role: 'viewer' as const };

  it('keeps delivering to valid credentials, and ends at the next check after sign-out', async () => {
    const s = await createSession(server.ctx.db, who, 60_000);
    const stream = await open(server, { cookie: `__Host-ct_session=${s.id}` });
    try {
      // Several checks pass: the stream stays open and delivers.
      expect(await stream.ended(500)).toBe('open');
      publish(server.ctx, 'deployment', { id: 'before-logout' });
      await until('the event before sign-out', () => stream.text().includes('before-logout'));
      const out = await fetch(`${server.url}/auth/logout`, { method: 'POST', headers: { cookie: `__Host-ct_session=${s.id}`, 'x-csrf-token': s.csrf } });
      expect(out.status).toBe(204);
      expect(await stream.ended(5_000)).toBe('ended');
      expect(stream.text().endsWith(END_UNAUTHENTICATED)).toBe(true);
      publish(server.ctx, 'host-alert', { id: 'after-logout' });
      expect(stream.text()).not.toContain('after-logout');
      // Nobody is left subscribed for it.
      expect(server.ctx.events.listenerCount('event')).toBe(0);
    } finally {
      stream.abort();
    }
  });

  it('ends when the session expires', async () => {
    const s = await createSession(server.ctx.db, who, 1_000);
    const stream = await open(server, { cookie: `__Host-ct_session=${s.id}` });
    try {
      expect(await stream.ended(5_000)).toBe('ended');
      expect(stream.text().endsWith(END_UNAUTHENTICATED)).toBe(true);
    } finally {
      stream.abort();
    }
  });

  it('ends when its API key is revoked (the token cache keeps an answer at most 5 s)', async () => {
    const { id, key } = await createApiKey(server.ctx.db, 'events-viewer', 'viewer');
    const stream = await open(server, { authorization: `Bearer ${key}` });
    try {
      expect(await stream.ended(300)).toBe('open');
      await server.ctx.db.run('UPDATE api_keys SET revoked_at = ? WHERE id = ?', [Date.now(), id]);
      expect(await stream.ended(10_000)).toBe('ended');
      expect(stream.text().endsWith(END_UNAUTHENTICATED)).toBe(true);
    } finally {
      stream.abort();
    }
  }, 20_000);
});

describe('an event stream has a maximum duration', () => {
  let server: RunningServer;
  beforeAll(async () => void (server = await testServer({ events: { maxSeconds: 1 } })));
  afterAll(async () => server?.close());

  it('ends with reason MAX_DURATION, the client reconnecting afresh', async () => {
    const { key } = await createApiKey(server.ctx.db, 'events-long', 'viewer');
    const stream = await open(server, { authorization: `Bearer ${key}` });
    try {
      expect(await stream.ended(5_000)).toBe('ended');
      expect(stream.text().endsWith('event: end\ndata: {"reason":"MAX_DURATION"}\n\n')).toBe(true);
    } finally {
      stream.abort();
    }
  });
});
