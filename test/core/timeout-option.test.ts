import { describe, expect, it } from '@jest/globals';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCt } from '../support/cli.js';
import { MAX_TIMER_MS, timeoutOption } from '../../src/core/timeout-option.js';

describe('--timeout values', () => {
  it('are whole numbers from 1 to what a timer can wait, in the flag\'s unit', () => {
    expect(timeoutOption('1')).toBe(1);
    expect(timeoutOption(String(MAX_TIMER_MS))).toBe(MAX_TIMER_MS);
    expect(timeoutOption('60', '--timeout', 's')).toBe(60_000);
    for (const bad of ['0', '', '-5', '1.5', '1e3', ' 10', 'abc', String(MAX_TIMER_MS + 1), '9'.repeat(400)]) {
      expect(() => timeoutOption(bad)).toThrow(expect.objectContaining({ code: 'USAGE' }));
    }
    expect(() => timeoutOption(String(Math.floor(MAX_TIMER_MS / 1000) + 1), '--timeout', 's')).toThrow(/seconds from 1 to 2147483: /);
    // The value quoted back is bounded.
    expect(() => timeoutOption('9'.repeat(400))).toThrow(expect.objectContaining({ message: expect.stringMatching(/^.{0,140}$/) }));
  });

  it('a timeout longer than a timer can wait is USAGE, not a request timed out after 1 ms', async () => {
    let requests = 0;
    const server = createServer((_req, res) => {
      requests++;
      setTimeout(() => res.writeHead(503).end(), 300);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const dir = mkdtempSync(join(tmpdir(), 'ct-timeout-'));
    try {
      writeFileSync(join(dir, 'entry.json'), '{}');
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const r = await runCt(['log', 'submit', '--url', url, '--entry', join(dir, 'entry.json'), '--timeout', '3000000000']);
      expect(r).toMatchObject({ code: 1, stdout: '' });
      expect(r.stderr).toContain('error[USAGE]: --timeout: not a whole number of milliseconds from 1 to 2147483647: 3000000000');
      expect(requests).toBe(0);
      // ct fetch and ct push share the registry options' --timeout.
      const fetch = await runCt(['fetch', `127.0.0.1:${(server.address() as AddressInfo).port}/a/b:t`, '-o', join(dir, 'out.ctp'), '--plain-http', '--allow-address', '127.0.0.1', '--timeout', '3000000000']);
      expect(fetch.stderr).toContain('error[USAGE]: --timeout: not a whole number of milliseconds from 1 to 2147483647: 3000000000');
      expect(requests).toBe(0);
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
