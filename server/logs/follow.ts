import type { Request, Response } from 'express';
import type { HostHub } from '../channel/hub.js';
import { sendError } from '../http-error.js';
import { LOG_CURSOR_RE } from '../../src/protocol/logs.js';

/** Bounds of log follows (config `logFollow`): each open follow asks its host once a second. */
export interface FollowLimits {
  /** Follows one principal (API key, session, OIDC identity) may hold open at once. Default 4. */
  perPrincipal?: number;
  /** Follows of one host's containers open at once, all principals together. Default 32. */
  perHost?: number;
  /** A follow ends after this long (an `end` event); the client resumes with Last-Event-ID. Default 3600. */
  maxSeconds?: number;
  /** Between two polls of the host (default 1000 ms). */
  pollMs?: number;
  /**
   * How often an open follow's credentials are judged again (default 5000 ms), as `/api/v1/events`
   * does: a revoked API key, a signed-out session or a role without `deploy` ends the follow.
   */
  recheckMs?: number;
}

/** Whether the credentials of the request that opened a follow still allow it (false, or a throw: no). */
export type FollowRecheck = (req: Request) => Promise<boolean>;

/** The longest delay a Node timer takes (a longer one fires after 1 ms, with a TimeoutOverflowWarning). */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * How long an ended follow's client has to read what is still buffered for it: one that is not
 * reading (the follow ended while it was stuck) kept its socket and that page open without end.
 */
export const END_GRACE_MS = 5000;

interface Held { principal: string; host: string; ends: number }

/**
 * `GET /api/v1/hosts/{id}/logs?follow=1` as server-sent events: one `log` event per line
 * ({stream, time, text}) with the cursor as the event id, the tail first (maxBytes), then new
 * lines as the host has them (asked every second over the channel). A client that reconnects with
 * Last-Event-ID resumes after it. `gone` ends the stream when the container is not (or no longer)
 * on the host; `unavailable` says the host did not answer (the stream goes on); `end` says the
 * follow reached its maximum duration. Polling stops as soon as the client goes away. Follows are
 * counted per principal and per host: one over either cap is refused with 429 LOG_FOLLOW_LIMIT and
 * Retry-After (seconds until the soonest of the holder's follows reaches its maximum duration, at
 * most 60).
 */
export class LogFollows {
  private readonly open = new Set<Held>();
  private readonly perPrincipal: number;
  private readonly perHost: number;
  private readonly maxMs: number;
  private readonly pollMs: number;
  private readonly recheckMs: number;

  /**
   * `recheck` judges the opening request's credentials again while the follow lasts (they were
   * checked only when it opened, and a follow lasts up to maxSeconds: a revoked key kept reading
   * the logs, which may hold secrets, for an hour). Without one, nothing is rechecked.
   */
  constructor(private readonly hub: HostHub, limits: FollowLimits = {}, private readonly recheck?: FollowRecheck) {
    this.perPrincipal = limits.perPrincipal ?? 4;
    this.perHost = limits.perHost ?? 32;
    this.maxMs = (limits.maxSeconds ?? 3600) * 1000;
    this.pollMs = limits.pollMs ?? 1000;
    this.recheckMs = limits.recheckMs ?? 5000;
  }

  /** False once the follow's credentials no longer pass (a check that could not be made counts as failed). */
  private async stillAllowed(req: Request): Promise<boolean> {
    if (!this.recheck) return true;
    return this.recheck(req).catch(() => false);
  }

  /** Follows open now (the whole server's). */
  get count(): number {
    return this.open.size;
  }

  async follow(req: Request, res: Response, hostId: string, container: string, maxBytes: number): Promise<void> {
    const principal = `${req.principal?.kind ?? 'anonymous'}:${req.principal?.id ?? ''}`;
    const mine = [...this.open].filter((h) => h.principal === principal);
    const theirs = [...this.open].filter((h) => h.host === hostId);
    const full = mine.length >= this.perPrincipal ? { held: mine, what: `${this.perPrincipal} log follows per principal` }
      : theirs.length >= this.perHost ? { held: theirs, what: `${this.perHost} log follows of one host` } : undefined;
    if (full) {
      const soonest = Math.min(...full.held.map((h) => h.ends)) - Date.now();
      res.setHeader('retry-after', String(Math.max(1, Math.min(60, Math.ceil(soonest / 1000)))));
      return sendError(res, 429, 'LOG_FOLLOW_LIMIT', `at most ${full.what} are open at once: close one or try again later`, { limit: full.what });
    }
    const held: Held = { principal, host: hostId, ends: Date.now() + this.maxMs };
    this.open.add(held);
    // The response's close, not the request's: it is the one that says the client went away.
    let gone = false;
    let wake: (() => void) | undefined;
    res.on('close', () => {
      gone = true;
      this.open.delete(held);
      wake?.();
    });
    try {
      await this.stream(req, res, hostId, container, maxBytes, held, () => gone, (w) => (wake = w));
    } finally {
      this.open.delete(held);
    }
  }

  private async stream(req: Request, res: Response, hostId: string, container: string, maxBytes: number, held: Held, gone: () => boolean, onWake: (w: () => void) => void): Promise<void> {
    const last = req.header('last-event-id');
    let since = last && LOG_CURSOR_RE.test(last) ? last : undefined;
    let page = await this.hub.requestLogs(hostId, container, maxBytes, 10_000, since);
    if (gone()) return;
    if ('code' in page && page.code === 'CONTAINER_NOT_FOUND') return sendError(res, 404, page.code, `no container ${container} on this host`);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.write(': following\n\n');
    let quietSince = Date.now();
    let checkedAt = Date.now();
    for (;;) {
      // Judged again before a page is written: lines the host sent after the credentials stopped
      // passing are not delivered.
      if (Date.now() - checkedAt >= this.recheckMs) {
        checkedAt = Date.now();
        const ok = await this.stillAllowed(req);
        if (gone()) return;
        if (!ok) {
          res.write(`event: end\ndata: ${JSON.stringify({ reason: 'UNAUTHENTICATED' })}\n\n`);
          break;
        }
      }
      if ('code' in page) {
        if (page.code === 'CONTAINER_NOT_FOUND') {
          res.write(`event: gone\ndata: ${JSON.stringify({ container })}\n\n`);
          break;
        }
        res.write(`event: unavailable\ndata: ${JSON.stringify({ code: page.code })}\n\n`);
      } else if (page.lines) {
        // One event per line; the last one carries the cursor to resume after.
        const lines = page.lines;
        const cursor = page.cursor;
        lines.forEach((l, i) => res.write(`event: log\n${i === lines.length - 1 && cursor ? `id: ${cursor}\n` : ''}data: ${JSON.stringify(l)}\n\n`));
        if (cursor) since = cursor;
        if (lines.length > 0) quietSince = Date.now();
      } else {
        // A host from before log lines: the text once, then nothing to follow with.
        res.write(`event: log\ndata: ${JSON.stringify({ stream: 'stdout', time: null, text: page.text })}\n\n`);
        break;
      }
      if (Date.now() - quietSince > 15_000) {
        res.write(': ping\n\n');
        quietSince = Date.now();
      }
      // A client that stops reading is not written for without end (up to maxSeconds of a host's
      // output, buffered here): the host is asked again only once the last page has left.
      if (res.writableNeedDrain) {
        await new Promise<void>((r) => {
          const t = setTimeout(done, Math.min(MAX_TIMER_MS, Math.max(0, held.ends - Date.now())));
          function done() {
            clearTimeout(t);
            res.off('drain', done);
            r();
          }
          res.once('drain', done);
          onWake(done);
        });
        if (gone()) return;
      }
      const wait = Math.min(this.pollMs, held.ends - Date.now());
      if (wait > 0) await new Promise<void>((r) => { const t = setTimeout(r, wait); onWake(() => (clearTimeout(t), r())); });
      if (gone()) return;
      if (Date.now() >= held.ends) {
        res.write(`event: end\ndata: ${JSON.stringify({ reason: 'MAX_DURATION', resume: since ?? null })}\n\n`);
        break;
      }
      page = await this.hub.requestLogs(hostId, container, 1 << 20, 10_000, since ?? `${'0'.repeat(24)}+0`);
      if (gone()) return;
    }
    // A client still not reading gets a few seconds, then its socket is dropped, as
    // /api/v1/events drops one that stops reading: the follow's slot was freed, its buffers were not.
    const stuck = res.writableNeedDrain;
    res.end();
    if (stuck && !res.writableFinished) {
      const t = setTimeout(() => void (res.writableFinished || res.destroy()), END_GRACE_MS);
      t.unref();
      res.once('finish', () => clearTimeout(t));
      res.once('close', () => clearTimeout(t));
    }
  }
}
