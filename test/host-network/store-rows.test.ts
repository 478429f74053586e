/**
 * The network store's rows are used only as an agent writes them: an attachment's network
 * namespace is `/run/netns/<its container id>-<scope>` (or the bare id, as earlier agents wrote). A tampered row naming another namespace (the
 * host's own, /proc/1/ns/net) would have netavark set up or tear down networking there and
 * `ip netns delete` act on it: it is refused (HOST_STATE_INVALID) when read, before anything acts.
 */
import { describe, expect, it } from '@jest/globals';
import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetworkStore } from '../../host/network/store.js';

describe('network store rows', () => {
  it('reads what an agent wrote; refuses a row naming another network namespace or a container id that is none', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'ct-netstore-')), 'state.db');
    const store = new NetworkStore(path);
    store.ensureNetwork('production', 4);
    const row = store.reserve({ containerId: 'web', environment: 'production', app: 'web', netns: '/run/netns/web', ports: [], egress: 'none' }, ['10.1.0.2'], (a) => JSON.stringify({ address: a }));
    expect(store.attachments().map((a) => [a.containerId, a.netns])).toEqual([['web', '/run/netns/web']]);
    expect(row.address).toBe('10.1.0.2');
    const db = new Database(path);
    db.pragma('foreign_keys = OFF');
    for (const netns of ['/proc/1/ns/net', '/run/netns/other', '/run/netns/../../proc/1/ns/net']) {
      db.prepare('UPDATE net_attachments SET netns = ?').run(netns);
      expect(() => store.attachments()).toThrow(expect.objectContaining({ code: 'HOST_STATE_INVALID' }));
    }
    // A manager's own names: the container id with a state directory's scope, or alone (earlier agents).
    for (const netns of ['/run/netns/web-0123abcd', '/run/netns/web']) {
      db.prepare('UPDATE net_attachments SET netns = ?').run(netns);
      expect(store.attachments().map((a) => a.netns)).toEqual([netns]);
    }
    for (const netns of ['/run/netns/web-0123abcd0', '/run/netns/web-0123ABCD', '/run/netns/web-0123abc', '/run/netns/webx0123abcd', '/run/netns/web-0123abcd/..', '/run/netns/wex-0123abcd']) {
      db.prepare('UPDATE net_attachments SET netns = ?').run(netns);
      expect(() => store.attachments()).toThrow(expect.objectContaining({ code: 'HOST_STATE_INVALID' }));
    }
    db.prepare('UPDATE net_attachments SET netns = ?').run('/run/netns/web');
    expect(store.attachments()).toHaveLength(1);
    db.prepare(`INSERT INTO net_attachments (container_id, environment, app, address, netns, document, phase) VALUES ('..', 'production', 'x', '10.1.0.3', '/run/netns/..', '{}', 'setup')`).run();
    expect(() => store.attachments()).toThrow(expect.objectContaining({ code: 'HOST_STATE_INVALID' }));
    db.close();
    store.close();
  });

  it('keeps each container\'s own egress, and gives the rows of an earlier agent (one egress for the network) the narrowest they had', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'ct-netstore-')), 'state.db');
    // An earlier agent's state: net_attachments without egress; its network's egress is that of the container attached last.
    const old = new Database(path);
    old.exec(`
      CREATE TABLE net_networks (environment TEXT PRIMARY KEY, slot INTEGER NOT NULL UNIQUE, egress TEXT NOT NULL);
      CREATE TABLE net_attachments (container_id TEXT PRIMARY KEY, environment TEXT NOT NULL REFERENCES net_networks(environment), app TEXT NOT NULL,
        address TEXT NOT NULL, netns TEXT NOT NULL, document TEXT NOT NULL, phase TEXT NOT NULL CHECK (phase IN ('setup','up','down')), UNIQUE (environment, address));
      INSERT INTO net_networks VALUES ('production', 0, 'environment');
      INSERT INTO net_attachments VALUES ('shut', 'production', 'shut', '10.1.0.2', '/run/netns/shut', '{"dns_servers":["10.1.0.255"]}', 'up');
      INSERT INTO net_attachments VALUES ('open', 'production', 'open', '10.1.0.3', '/run/netns/open', '{}', 'up');
      INSERT INTO net_attachments VALUES ('odd', 'production', 'odd', '10.1.0.4', '/run/netns/odd', 'not json', 'up');
    `);
    old.close();
    const store = new NetworkStore(path);
    // A second store on the same file (a `ct host` command beside the agent) finds the column there.
    new NetworkStore(path).close();
    expect(store.attachments().map((a) => [a.containerId, a.egress])).toEqual([['odd', 'none'], ['open', 'environment'], ['shut', 'none']]);
    // New containers keep their own, whatever their neighbours': attaching one no longer rewrites the others'.
    store.ensureNetwork('production', 4);
    store.reserve({ containerId: 'wide', environment: 'production', app: 'wide', netns: '/run/netns/wide', ports: [], egress: 'any' }, ['10.1.0.5'], () => '{}');
    store.ensureNetwork('production', 4);
    store.reserve({ containerId: 'narrow', environment: 'production', app: 'narrow', netns: '/run/netns/narrow', ports: [], egress: 'none' }, ['10.1.0.6'], () => '{}');
    expect(Object.fromEntries(store.attachments().map((a) => [a.containerId, a.egress]))).toEqual({ narrow: 'none', odd: 'none', open: 'environment', shut: 'none', wide: 'any' });
    // A value no agent writes is the narrowest.
    const db = new Database(path);
    db.prepare(`UPDATE net_attachments SET egress = 'everything' WHERE container_id = 'wide'`).run();
    db.close();
    expect(store.attachment('wide')!.egress).toBe('none');
    store.close();
  });
});
