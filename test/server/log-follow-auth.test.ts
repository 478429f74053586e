/**
 * A log follow (`GET /api/v1/hosts/{id}/logs?follow=1`) lasts up to an hour: its credentials are
 * judged again while it is open, as `/api/v1/events` does, and a client that stops reading does
 * not make the server ask the host for page after page it can only buffer.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { request, type IncomingMessage } from 'node:http';
import { createApiKey } from '../../server/auth/api-keys.js';
import { channelServer, until, type ChannelServer } from './channel/support.js';
import type { LogLine } from '../../src/protocol/logs.js';
import { END_GRACE_MS } from '../../server/logs/follow.js';
import { openEventStream } from '../support/event-stream.js';

const CONTAINER = 'ct-web-0123456789';
const label = (n: number) => (0x4000000000000000n + BigInt(n)).toString(16).padStart(16, '0') + '00000000';

describe('an open log follow', () => {
  let cs: ChannelServer;
  let asked = 0;
  /** Text of each line the host answers with (big lines make big pages). */
  let lineText = 'hello';
  let linesPerPage = 1;
  beforeAll(async () => {
    cs = await channelServer({ logFollow: { pollMs: 20, recheckMs: 100 } });
    await cs.agent(cs.url, {
      logs: async () => '',
      logLines: async () => {
        const n = ++asked;
        const lines: LogLine[] = Array.from({ length: linesPerPage }, () => ({ stream: 'stdout', time: '2026-01-01T00:00:00.000000000Z', text: lineText }));
        return { lines, cursor: `${label(n)}+${linesPerPage}` };
      },
    });
    await until('host connected', () => Boolean(cs.hub.connected(cs.hostId)));
  }, 30_000);
  afterAll(async () => cs?.close());

  it('ends with reason UNAUTHENTICATED once its API key is revoked, and no line is sent after that', async () => {
    const { id, key } = await createApiKey(cs.ctx.db, 'follower', 'operator');
    const stream = await openEventStream(`${cs.url}/api/v1/hosts/${cs.hostId}/logs?container=${CONTAINER}&follow=1`, { authorization: `Bearer ${key}` });
    try {
      await until('lines followed', () => (stream.text().match(/event: log/g) ?? []).length >= 3);
      await cs.ctx.db.run('UPDATE api_keys SET revoked_at = ? WHERE id = ?', [Date.now(), id]);
      // The token cache answers for at most 5 s; then the next recheck ends the follow.
      expect(await stream.ended(10_000)).toBe('ended');
      expect(stream.text().endsWith('event: end\ndata: {"reason":"UNAUTHENTICATED"}\n\n')).toBe(true);
    } finally {
      stream.abort();
    }
  }, 20_000);

  it('stops asking the host while the client does not read what was sent', async () => {
    const { key } = await createApiKey(cs.ctx.db, 'slow-reader', 'operator');
    // ~400 KB pages (each sent twice over the channel, as lines and text, under its 1 MiB frame): a few fill the socket buffers.
    lineText = 'x'.repeat(1000);
    linesPerPage = 400;
    const before = asked;
    let response: IncomingMessage | undefined;
    const req = request(`${cs.url}/api/v1/hosts/${cs.hostId}/logs?container=${CONTAINER}&follow=1`, { headers: { authorization: `Bearer ${key}` } }, (r) => {
      response = r;
      // Never read: the body stays in the kernel's buffers and the server's.
      r.pause();
    });
    req.end();
    try {
      await until('the follow opened', () => response !== undefined);
      expect(response!.statusCode).toBe(200);
      await new Promise((r) => setTimeout(r, 2000));
      const settled = asked;
      await new Promise((r) => setTimeout(r, 2000));
      // At 20 ms a poll, an unbounded follow asks ~100 more pages (100 MB buffered) in 2 s.
      expect(settled - before).toBeLessThan(40);
      expect(asked - settled).toBeLessThanOrEqual(1);
    } finally {
      req.destroy();
      lineText = 'hello';
      linesPerPage = 1;
    }
  }, 20_000);
});

describe('a log follow that ends while its client is not reading', () => {
  let cs: ChannelServer;
  beforeAll(async () => {
    cs = await channelServer({ logFollow: { pollMs: 20, maxSeconds: 2 } });
    await cs.agent(cs.url, {
      logs: async () => '',
      // ~400 KB pages: a few fill the socket buffers of a client that does not read.
      logLines: async () => ({ lines: Array.from({ length: 400 }, () => ({ stream: 'stdout' as const, time: '2026-01-01T00:00:00.000000000Z', text: 'x'.repeat(1000) })), cursor: `${label(1)}+400` }),
    });
    await until('host connected', () => Boolean(cs.hub.connected(cs.hostId)));
  }, 30_000);
  afterAll(async () => cs?.close());

  it('has its connection dropped a few seconds after the end (MAX_DURATION), not left open with its buffered pages', async () => {
    const { key } = await createApiKey(cs.ctx.db, 'stuck-reader', 'operator');
    let response: IncomingMessage | undefined;
    const req = request(`${cs.url}/api/v1/hosts/${cs.hostId}/logs?container=${CONTAINER}&follow=1`, { headers: { authorization: `Bearer ${key}` } }, (r) => {
      response = r;
      r.pause();
    });
    req.on('error', () => undefined);
    req.end();
    try {
      await until('the follow opened', () => response !== undefined);
      expect(response!.statusCode).toBe(200);
      // Not read through maxSeconds (2 s) and the grace after it.
      await new Promise((r) => setTimeout(r, 2000 + END_GRACE_MS + 1500));
      // Read now: a dropped connection ends before the last page and the `end` event; one left open
      // (the server holding its socket and buffers for as long as the client likes) delivers them.
      let text = '';
      const outcome = await new Promise<string>((resolve) => {
        response!.on('data', (c: Buffer) => (text += c.toString('utf8')));
        response!.on('end', () => resolve(response!.complete ? 'complete' : 'cut'));
        response!.on('error', () => resolve('cut'));
        response!.on('aborted', () => resolve('cut'));
        response!.resume();
        setTimeout(() => resolve('still open'), 8000);
      });
      expect(outcome).toBe('cut');
      expect(text).not.toContain('MAX_DURATION');
    } finally {
      req.destroy();
    }
  }, 30_000);
});
