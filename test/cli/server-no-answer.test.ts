/**
 * The deploy-server commands (ct api-key, ct host token|list|remove) say why a server did not
 * answer: fetch's error is a TypeError saying "fetch failed", and that name was all they printed.
 * Now the cause's code (ECONNREFUSED: not running, or another port) and, for https:// to a server
 * answering plain HTTP, the hint ct push gives for a registry (shared: src/core/no-answer.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import { runCt } from '../support/cli.js';
import { noAnswerReason } from '../../src/core/no-answer.js';

let plain: Server;
let plainPort: number;
let closedPort: number;

beforeAll(async () => {
  plain = createServer((_q, r) => r.end('{}'));
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
  plainPort = (plain.address() as { port: number }).port;
  // A port nothing listens on: one the kernel just gave and took back.
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  closedPort = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
});
afterAll(async () => {
  await new Promise<void>((r) => plain.close(() => r()));
});

const env = { CT_TOKEN: 'ctk_aaaaaaaaaaaaaaaaaaaaaaaa' };

describe('a deploy server that does not answer', () => {
  it('names the refused connection (ct host list, ct api-key list)', async () => {
    for (const args of [['host', 'list'], ['api-key', 'list']]) {
      const r = await runCt([...args, '--server', `http://127.0.0.1:${closedPort}`], { env });
      expect(r.code).toBe(12);
      expect(r.stderr).toMatch(/^error\[SERVER_UNAVAILABLE\]/);
      expect(r.stderr).toContain('ECONNREFUSED');
      expect(r.stderr).not.toContain('TypeError');
    }
  });

  it('says when https:// reached a server that answers plain HTTP', async () => {
    const r = await runCt(['host', 'list', '--server', `https://127.0.0.1:${plainPort}`], { env });
    expect(r.code).toBe(12);
    expect(r.stderr).toMatch(/^error\[SERVER_UNAVAILABLE\]/);
    expect(r.stderr).toContain('plain HTTP, not TLS');
  });

  it('bounds the reason and stops on a cause chain that loops', () => {
    const e = new Error('outer') as Error & { cause?: unknown };
    const inner = Object.assign(new Error('x'.repeat(100_000)), { code: 'EPROTO' }) as Error & { cause?: unknown };
    e.cause = inner;
    expect(noAnswerReason(e).length).toBeLessThanOrEqual(300);
    expect(noAnswerReason(e)).toBe('EPROTO');
    inner.cause = e;
    expect(noAnswerReason(e).length).toBeLessThanOrEqual(300);
  });

  it('never prints a request header or a URL credential fetch quoted in its error', async () => {
    for (const [url, headers] of [
      [`http://admin:s3cretpass@127.0.0.1:${closedPort}/api/v1/x`, {}],
      [`http://127.0.0.1:${closedPort}/api/v1/x`, { authorization: 'Bearer ctk_SEC\nRETTOKEN' }],
      [`http://127.0.0.1:${closedPort}/api/v1/x`, { authorization: 'Bearer ctk_SECRET\u0100TOKEN' }],
    ] as [string, Record<string, string>][]) {
      const e = await fetch(url, { headers }).then(() => undefined, (x: unknown) => x);
      expect(e).toBeDefined();
      const reason = noAnswerReason(e);
      expect(reason).not.toMatch(/s3cretpass|SEC|RETTOKEN|Bearer/);
      expect(reason).toBe('TypeError: the request could not be made');
    }
  });

  it('refuses a token that is not visible ASCII, without printing it', async () => {
    for (const token of ['ctk_SECRET\n#x', 'ctk_SECRET TOKEN', 'ctk_SECRET\u0100TOKEN']) {
      const r = await runCt(['api-key', 'list', '--server', `http://127.0.0.1:${closedPort}`], { env: { CT_TOKEN: token } });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^error\[USAGE\]/);
      expect(r.stdout + r.stderr).not.toContain('SECRET');
    }
  });
});
