/**
 * Messages on stderr show what a hostile party put in them instead of letting the terminal act on
 * it: a registry whose error body carries escape sequences (set the window title, write the
 * clipboard through OSC 52, rewrite the line with CR) reaches the user of `ct fetch` as visible
 * `\uXXXX` text; ordinary text, tabs, newlines and non-ASCII letters are left as they are.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { terminalText } from '../../src/core/terminal.js';

const ct = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'ct.js');
const HOSTILE = 'no such tag\u001b]52;c;cm0gLXJmIH4=\u0007\u001b]0;owned\u0007\rOK: verified\u009b31m\u202eexe.txt\u007f';

describe('terminal text', () => {
  it('escapes controls, C1, DEL and direction marks; keeps tab, newline and letters', () => {
    expect(terminalText(HOSTILE)).toBe('no such tag\\u001b]52;c;cm0gLXJmIH4=\\u0007\\u001b]0;owned\\u0007\\u000dOK: verified\\u009b31m\\u202eexe.txt\\u007f');
    expect(terminalText('a\tb\nç日本 ✓ — "q"\n')).toBe('a\tb\nç日本 ✓ — "q"\n');
  });

  describe('ct fetch from a registry that answers with escape sequences', () => {
    let server: Server;
    let port: number;
    // The output must not exist (ct fetch refuses an existing -o, /dev/null included).
    const dir = mkdtempSync(join(tmpdir(), 'ct-terminal-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    beforeAll(async () => {
      // The tag resolves; what follows it answers 400 with the hostile body (no retry).
      server = createServer((req, res) => {
        if (req.method === 'HEAD') {
          res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'docker-content-digest': `sha256:${'a'.repeat(64)}`, 'content-length': '100' });
          return res.end();
        }
        res.writeHead(400, { 'content-type': 'text/plain' });
        res.end(HOSTILE);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      port = (server.address() as AddressInfo).port;
    });
    afterAll(() => new Promise<void>((r) => server.close(() => r())));

    it('prints the registry\'s words, not its escapes, and fails with the registry\'s code', async () => {
      // Asynchronously: this process is the registry.
      const r = await new Promise<{ status: number | null; stderr: string }>((resolve) => {
        const child = execFile(process.execPath, [ct, 'fetch', `127.0.0.1:${port}/acme/app:v1`, '--plain-http', '--allow-address', '127.0.0.1', '-o', join(dir, 'app.ctp')], { encoding: 'latin1', timeout: 30_000 }, (_e, _out, stderr) => resolve({ status: child.exitCode, stderr }));
      });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/^error\[REGISTRY_ERROR\]: .*HTTP 400: no such tag\\u001b\]52;c;cm0gLXJmIH4=\\u0007/m);
      // Not one byte a terminal acts on besides the newline at its end.
      // eslint-disable-next-line no-control-regex
      expect(r.stderr).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
    });
  });
});
