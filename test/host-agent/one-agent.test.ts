/**
 * `ct host run` on a state directory another agent serves is refused before it touches anything:
 * recovering a replace the live agent is still health-checking made both agents roll it back at
 * once (the app was left down: review of the crash-recovery change). The directory's files, a
 * replace record included, are exactly as they were.
 */
import { describe, it, expect, afterEach } from '@jest/globals';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveControl } from '../../host/agent/control.js';
import { runHostAgent } from '../../host/main.js';
import { replaceRecordPath } from '../../host/lifecycle/replace-record.js';
import { isCtError } from '../../src/core/errors.js';

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

describe('one agent per state directory', () => {
  it('a second `ct host run` is USAGE before recovery, leaving a replace record untouched', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'ct-one-agent-'));
    dirs.push(stateDir);
    const live = await serveControl(stateDir, async () => ({ status: 'running' }));
    try {
      const record = replaceRecordPath(stateDir, 'prod-app');
      mkdirSync(join(record, '..'), { recursive: true });
      writeFileSync(record, '{"a replace the live agent is health-checking":true}');
      const before = readdirSync(stateDir, { recursive: true }).sort();
      let code: string | undefined;
      let message = '';
      const out: string[] = [];
      try {
        // The trust store does not exist: refused first means this never gets read.
        await runHostAgent({ server: 'http://127.0.0.1:9', stateDir, name: 'second', trustStore: join(stateDir, 'missing-trust.json'), policies: join(stateDir, 'missing-policies') },
          { out: (l: string) => out.push(l), err: (l: string) => out.push(l) } as never);
      } catch (e) {
        if (isCtError(e)) ({ code, message } = e);
        else message = String(e);
      }
      expect({ code, message }).toEqual({ code: 'USAGE', message: expect.stringContaining('another agent is running') });
      expect(out).toEqual([]);
      expect(readdirSync(stateDir, { recursive: true }).sort()).toEqual(before);
      expect(readFileSync(record, 'utf8')).toBe('{"a replace the live agent is health-checking":true}');
    } finally {
      await live.close();
    }
  });
});
