/**
 * Decommissioning a host (DELETE /api/v1/hosts/{id}): its live channel is closed at once and its
 * reconnects refused, its signed bundle downloads refused, it is no longer listed, a deploy waiting
 * for it ends as failed (HOST_REMOVED) instead of hanging, a removal made through another replica
 * reaches the replica holding the channel, and its name can be enrolled again.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { createApiKey } from '../../../server/auth/api-keys.js';
import { removeHost } from '../../../server/hosts/removal.js';
import { loadIdentity } from '../../../host/agent/identity.js';
import { hostRequestText } from '../../../src/protocol/request-signature.js';
import { spkiBase64 } from '../../../src/trust/keyid.js';
import { runCt } from '../../support/cli.js';
import { CHANNEL_PROTOCOL, HostHandshake } from '../../../src/protocol/handshake.js';
import { channelServer, FACTS, frameText, rawHost, until, type ChannelServer } from './support.js';

const DIGEST = `sha256:${'b'.repeat(64)}`;

describe('removing a host', () => {
  let s: ChannelServer;
  beforeEach(async () => {
    s = await channelServer();
  }, 30_000);
  afterEach(async () => {
    await s.close();
  });

  const del = (ref: string, key = s.adminKey) => fetch(`${s.url}/api/v1/hosts/${encodeURIComponent(ref)}`, { method: 'DELETE', headers: { authorization: `Bearer ${key}` } });
  const within = <T>(p: Promise<T>, ms: number) => Promise.race([p, new Promise<never>((_r, reject) => setTimeout(() => reject(new Error(`not within ${ms} ms`)), ms).unref())]);
  const enrolToken = async () => ((await (await fetch(`${s.url}/api/v1/hosts/tokens`, { method: 'POST', headers: { authorization: `Bearer ${s.adminKey}`, 'content-type': 'application/json' }, body: '{"labels":{}}' })).json()) as { token: string }).token;
  const closed = (ws: WebSocket) => new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
  /** A bundle download signed with the enrolled host's key, as the agent makes it. */
  async function download(digest = DIGEST): Promise<number> {
    const id = await loadIdentity(s.stateDir());
    const path = `/api/v1/hosts/bundles/${digest}`;
    const time = String(Date.now());
    const sig = sign(null, Buffer.from(hostRequestText('GET', path, time)), id.privateKey).toString('base64');
    const res = await fetch(`${s.url}${path}`, { headers: { 'x-ct-host': s.hostId, 'x-ct-time': time, 'x-ct-signature': sig } });
    await res.arrayBuffer();
    return res.status;
  }

  it('closes its live channel at once and refuses its reconnects', async () => {
    const live = await rawHost(s, () => undefined);
    await until('host connected', () => Boolean(s.hub.connected(s.hostId)));
    const ended = closed(live.ws);
    expect((await del(s.hostId)).status).toBe(204);
    expect(s.hub.connected(s.hostId)).toBeUndefined();
    expect(await ended).toEqual({ code: 4403, reason: 'HOST_REMOVED' });
    // Its key, still held by the machine, no longer opens a channel.
    const again = await rawHost(s, () => undefined);
    expect(await closed(again.ws)).toEqual({ code: 4403, reason: 'HOST_REMOVED' });
    // A real agent is never let in: told so, signed, it stops (test/server/channel/removed-agent.test.ts).
    const agent = await s.agent(s.url);
    expect(await within(agent.ended, 5_000)).toMatchObject({ code: 'HOST_REMOVED' });
    expect(agent.connected()).toBe(false);
    expect(s.hub.connected(s.hostId)).toBeUndefined();
  }, 30_000);

  it('refuses its signed bundle downloads and forgets what was assigned to it', async () => {
    await s.ctx.db.run('INSERT INTO host_bundles (host_id, bundle_digest, assigned_at) VALUES (?, ?, ?)', [s.hostId, DIGEST, Date.now()]);
    mkdirSync(join(s.ctx.config.dataDir, 'bundles'), { recursive: true });
    writeFileSync(join(s.ctx.config.dataDir, 'bundles', `${DIGEST.slice(7)}.ctp`), 'ctp bytes');
    expect(await download()).toBe(200);
    expect((await del(s.hostId)).status).toBe(204);
    expect(await download()).toBe(401);
    expect(await s.ctx.db.query('SELECT 1 FROM host_bundles WHERE host_id = ?', [s.hostId])).toEqual([]);
  });

  it('is no longer listed; removing again is 204, an unknown host 404, and only admins may', async () => {
    const list = async () => ((await (await fetch(`${s.url}/api/v1/hosts`, { headers: { authorization: `Bearer ${s.adminKey}` } })).json()) as { hosts: { id: string }[] }).hosts.map((h) => h.id);
    expect(await list()).toEqual([s.hostId]);
    const operator = (await createApiKey(s.ctx.db, 'ops', 'operator')).key;
    const refused = await del(s.hostId, operator);
    expect(refused.status).toBe(403);
    expect(await list()).toEqual([s.hostId]);
    // By name, as well as by id.
    expect((await del('relay-host')).status).toBe(204);
    expect(await list()).toEqual([]);
    expect((await del(s.hostId)).status).toBe(204);
    expect((await del('relay-host')).status).toBe(204);
    const unknown = await del('no-such-host');
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
    expect((await del('00000000-0000-4000-8000-000000000009')).status).toBe(404);
    // Audited once, with who asked.
    const audit = await s.ctx.db.query<{ subject: string; record: string }>(`SELECT subject, record FROM audit WHERE kind = 'host.removed'`);
    expect(audit).toHaveLength(1);
    expect(audit[0].subject).toBe('relay-host');
    expect(JSON.parse(audit[0].record)).toMatchObject({ hostId: s.hostId, host: 'relay-host', principal: { kind: 'api-key', role: 'admin' } });
  });

  it('ends a deploy waiting for the host as failed (HOST_REMOVED) instead of at its timeout', async () => {
    await rawHost(s, () => undefined); // connected, never answers
    await until('host connected', () => Boolean(s.hub.connected(s.hostId)));
    const assignment = { deploymentId: 'd-1', environment: 'dev', app: 'web', bundle: 'x', bundleDigest: DIGEST, imageDigest: DIGEST, download: `/api/v1/hosts/bundles/${DIGEST}` };
    const waiting = s.hub.assign(s.hostId, assignment, 120_000);
    await until('assignment recorded', async () => (await s.ctx.db.query('SELECT 1 FROM host_bundles WHERE host_id = ?', [s.hostId])).length === 1);
    const started = Date.now();
    expect((await del(s.hostId)).status).toBe(204);
    expect(await waiting).toMatchObject({ type: 'status', state: 'failed', code: 'HOST_REMOVED' });
    expect(Date.now() - started).toBeLessThan(5_000);
    // Nothing more is assigned to it.
    expect(await s.hub.assign(s.hostId, assignment, 120_000)).toEqual({ type: 'offline' });
  }, 30_000);

  it('closes the channel when another replica removed the host (the removal notice)', async () => {
    const live = await rawHost(s, () => undefined);
    await until('host connected', () => Boolean(s.hub.connected(s.hostId)));
    const ended = closed(live.ws);
    // What the replica that took the DELETE does: this replica's hub is not called, only told, by
    // the removal itself (its NOTIFY is sent inside the transaction, never lost after a commit).
    await removeHost(s.ctx.db, s.hostId, null);
    expect((await within(ended, 5_000)).code).toBe(4403);
    expect(s.hub.connected(s.hostId)).toBeUndefined();
  }, 30_000);

  it('refuses a channel whose host was removed while it shook hands', async () => {
    const id = await loadIdentity(s.stateDir());
    const ws = new WebSocket(`${s.url.replace(/^http/, 'ws')}/api/v1/hosts/channel?host=${s.hostId}`, [CHANNEL_PROTOCOL]);
    const hs = new HostHandshake(s.hostId, id.privateKey, id.serverPublicKey!);
    const ended = closed(ws);
    ws.once('message', (d) => {
      hs.challenge(Buffer.from(frameText(d)));
      // The server read the host's key before this removal; the hello it then accepts must not open a channel.
      void removeHost(s.ctx.db, s.hostId, null).then(() => ws.send(hs.hello(FACTS, id.generation).frame, { binary: false }));
    });
    expect(await ended).toEqual({ code: 4403, reason: 'HOST_REMOVED' });
    expect(s.hub.connected(s.hostId)).toBeUndefined();
  }, 30_000);

  it("a UUID-shaped ref is an id only: a retried DELETE of a removed id never removes a host named like it", async () => {
    // Enrolment refuses such a name now; a host enrolled under one before is still in the table.
    const other = '00000000-0000-4000-8000-0000000000aa';
    await s.ctx.db.run('INSERT INTO hosts (id, name, public_key, labels, facts, enrolled_at) VALUES (?, ?, ?, ?, ?, ?)', [other, s.hostId, 'key', '{}', '{}', Date.now()]);
    expect((await del(s.hostId)).status).toBe(204);
    expect((await del(s.hostId)).status).toBe(204); // the retry: the removed id, answered as gone
    expect(await s.ctx.db.query('SELECT id FROM hosts')).toEqual([{ id: other }]);
    // That host stays removable, by its id.
    expect((await del(other)).status).toBe(204);
    expect(await s.ctx.db.query('SELECT id FROM hosts')).toEqual([]);
  });

  it('refuses to enrol a host under a UUID-shaped name (it would read as an id)', async () => {
    const token = await enrolToken();
    const key = generateKeyPairSync('ed25519');
    const enrol = (name: string) => fetch(`${s.url}/api/v1/hosts/enroll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token, name, publicKey: spkiBase64(key.publicKey) }) });
    const refused = await enrol('00000000-0000-4000-8000-0000000000bb');
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'BAD_REQUEST', message: 'name must not be shaped like a host id (a UUID)' });
    expect(await s.ctx.db.query('SELECT name FROM hosts ORDER BY name')).toEqual([{ name: 'relay-host' }]);
    // The token was not spent: a proper name enrols with it.
    expect((await enrol('edge-2')).status).toBe(201);
  });

  it('closes the channel of a host whose row went without a notice, at its next row write', async () => {
    let welcomed = false;
    const live = await rawHost(s, (m) => void (welcomed ||= m.type === 'welcome'));
    await until('host welcomed', () => welcomed && Boolean(s.hub.connected(s.hostId)));
    const ended = closed(live.ws);
    // The removal notice lost: only the row is gone.
    await s.ctx.db.run('DELETE FROM hosts WHERE id = ?', [s.hostId]);
    live.send({ type: 'containers', containers: [] });
    expect(await within(ended, 5_000)).toEqual({ code: 4403, reason: 'HOST_REMOVED' });
    expect(s.hub.connected(s.hostId)).toBeUndefined();
  }, 30_000);

  it('an assignment racing a removal answers offline at once, never left to its timeout', async () => {
    await rawHost(s, () => undefined);
    await until('host connected', () => Boolean(s.hub.connected(s.hostId)));
    const assignment = { deploymentId: 'd-1', environment: 'dev', app: 'web', bundle: 'x', bundleDigest: DIGEST, imageDigest: DIGEST, download: `/api/v1/hosts/bundles/${DIGEST}` };
    // Removed while its generation is being written (the row still there when it is).
    const started = Date.now();
    const waiting = s.hub.assign(s.hostId, assignment, 8_000);
    s.hub.removed(s.hostId);
    expect(await waiting).toEqual({ type: 'offline' });
    expect(Date.now() - started).toBeLessThan(4_000);
  }, 30_000);

  it('an assignment to a host whose row went (no notice yet) answers offline, not an exception', async () => {
    await rawHost(s, () => undefined);
    await until('host connected', () => Boolean(s.hub.connected(s.hostId)));
    await s.ctx.db.run('DELETE FROM hosts WHERE id = ?', [s.hostId]);
    const assignment = { deploymentId: 'd-1', environment: 'dev', app: 'web', bundle: 'x', bundleDigest: DIGEST, imageDigest: DIGEST, download: `/api/v1/hosts/bundles/${DIGEST}` };
    await expect(s.hub.assign(s.hostId, assignment, 8_000)).resolves.toEqual({ type: 'offline' });
    expect(await s.ctx.db.query('SELECT 1 FROM host_bundles WHERE host_id = ?', [s.hostId])).toEqual([]);
  }, 30_000);

  it('lets the name be enrolled again, with a new id', async () => {
    expect((await del('relay-host')).status).toBe(204);
    const res = await fetch(`${s.url}/api/v1/hosts/tokens`, { method: 'POST', headers: { authorization: `Bearer ${s.adminKey}`, 'content-type': 'application/json' }, body: '{"labels":{}}' });
    const { token } = (await res.json()) as { token: string };
    const key = generateKeyPairSync('ed25519');
    const enrol = await fetch(`${s.url}/api/v1/hosts/enroll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token, name: 'relay-host', publicKey: spkiBase64(key.publicKey) }) });
    expect(enrol.status).toBe(201);
    const { hostId } = (await enrol.json()) as { hostId: string };
    expect(hostId).not.toBe(s.hostId);
    // The name now means the new host: a DELETE by name removes it, not the old record.
    expect((await del('relay-host')).status).toBe(204);
    expect(await s.ctx.db.query('SELECT id FROM hosts')).toEqual([]);
    expect((await s.ctx.db.query<{ id: string }>('SELECT id FROM hosts_removed ORDER BY removed_at')).map((r) => r.id).sort()).toEqual([s.hostId, hostId].sort());
  });
});

describe('ct host token, list and remove', () => {
  let s: ChannelServer;
  const fresh = mkdtempSync(join(tmpdir(), 'ct-host-cli-'));
  beforeAll(async () => {
    s = await channelServer();
  }, 30_000);
  afterAll(async () => {
    await s.close();
    rmSync(fresh, { recursive: true, force: true });
  });

  it('mints a token a host enrols with, lists the fleet and removes a host', async () => {
    const env = { CT_TOKEN: s.adminKey };
    const minted = await runCt(['host', 'token', '--server', s.url, '--label', 'env=dev', '--label', 'zone=a=b', '--ttl', '30m'], { env });
    expect([minted.code, minted.stderr]).toEqual([0, expect.stringMatching(/^enrolment token expires \d{4}-/)]);
    const token = minted.stdout.trim();
    const enrolled = await s.agent(s.url, { enrollToken: token, name: 'edge-1', stateDir: fresh });
    await until('new host connected', () => enrolled.connected());
    const listed = await runCt(['host', 'list', '--server', s.url, '--json'], { env });
    expect(listed.code).toBe(0);
    const hosts = JSON.parse(listed.stdout) as { id: string; name: string; labels: Record<string, string>; connected: boolean }[];
    expect(hosts.map((h) => [h.name, h.labels, h.connected])).toEqual([['edge-1', { env: 'dev', zone: 'a=b' }, true], ['relay-host', {}, false]]);
    const text = await runCt(['host', 'list', '--server', s.url], { env });
    expect(text.stdout).toMatch(new RegExp(`^ID +NAME +STATE +LAST SEEN +LABELS\\n${enrolled.hostId} +edge-1 +connected +\\S+ +env=dev,zone=a=b\\n`));
    const removed = await runCt(['host', 'remove', 'edge-1', '--server', s.url], { env });
    expect([removed.code, removed.stderr]).toEqual([0, 'host edge-1 removed\n']);
    await until('removed host disconnected', () => !enrolled.connected());
    expect((JSON.parse((await runCt(['host', 'list', '--server', s.url, '--json'], { env })).stdout) as { name: string }[]).map((h) => h.name)).toEqual(['relay-host']);
    // Refusals carry the server's code: an unknown host, a caller who is not an admin, a bad --ttl.
    const unknown = await runCt(['host', 'remove', 'nope', '--server', s.url], { env });
    expect([unknown.code, unknown.stderr]).toEqual([12, 'error[SERVER_REFUSED]: the deploy server refused: NOT_FOUND: no such host\n']);
    const viewer = (await createApiKey(s.ctx.db, 'viewer', 'viewer')).key;
    const refused = await runCt(['host', 'remove', 'relay-host', '--server', s.url], { env: { CT_TOKEN: viewer } });
    expect([refused.code, refused.stderr]).toEqual([12, expect.stringMatching(/^error\[SERVER_REFUSED\]: the deploy server refused: FORBIDDEN: /)]);
    const ttl = await runCt(['host', 'token', '--server', s.url, '--ttl', '8d'], { env });
    expect([ttl.code, ttl.stderr]).toEqual([1, expect.stringMatching(/^error\[USAGE\]: --ttl must be/)]);
    const label = await runCt(['host', 'token', '--server', s.url, '--label', 'env'], { env });
    expect([label.code, label.stderr]).toEqual([1, 'error[USAGE]: --label must be key=value, not "env"\n']);
  }, 60_000);

  it("writes a server's expiresAt to the terminal with its controls escaped", async () => {
    // A hostile (or broken) server: its expiry text carries a terminal escape (processIo.err escapes
    // all of stderr: this keeps it so for this server-supplied text).
    const fake = createServer((_req, res) => {
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ token: `cte_${'A'.repeat(43)}`, expiresAt: '\u001b]0;owned\u0007 2030' }));
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;
      const minted = await runCt(['host', 'token', '--server', url], { env: { CT_TOKEN: s.adminKey } });
      expect(minted.code).toBe(0);
      expect([minted.stderr.includes('\u001b'), minted.stderr.includes('\u0007')]).toEqual([false, false]);
      expect(minted.stderr).toMatch(/^enrolment token expires \\u001b\]0;owned\\u0007 2030; /);
    } finally {
      fake.close();
    }
  }, 30_000);
});
