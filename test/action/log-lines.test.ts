/**
 * What the actions write to the runner's log cannot turn text from outside into workflow commands:
 * a message carrying `::add-mask::` or `::stop-commands::` lines (a hostile registry's or server's
 * words) is written with those line starts broken, through the real `@actions/core`; the action's
 * own warnings stay commands (annotations), their data escaped by @actions/core.
 */
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import * as core from '@actions/core';
import { coreIo, logLine } from '../../actions/build/io.js';

describe('action log lines', () => {
  afterEach(() => {
    jest.restoreAllMocks();
  });

  it('a message cannot start a workflow command on any of its lines', () => {
    const written: string[] = [];
    jest.spyOn(process.stdout, 'write').mockImplementation(((t: string) => (written.push(String(t)), true)) as typeof process.stdout.write);
    const io = coreIo(core);
    io.info('registry said: denied\n::add-mask::ghs_token\n  ::stop-commands::abc\n::set-output name=digest::sha256:evil\rok');
    io.warning('bundle not pinned\n::error::fake');
    const out = written.join('');
    const lines = out.split('\n');
    // Only the action's own warning is a command; no line of the message is.
    expect(lines.filter((l) => /^\s*::/.test(l))).toEqual(['::warning::bundle not pinned%0A::error::fake']);
    expect(out).toContain(': :add-mask::ghs_token');
    expect(out).toContain('  : :stop-commands::abc');
    expect(out).toContain(': :set-output name=digest::sha256:evil\\u000dok');
  });

  it('leaves ordinary text as it is', () => {
    expect(logLine('pushed registry.example.com/acme/app@sha256:abc (2 logs: rekor, vcs-log)')).toBe('pushed registry.example.com/acme/app@sha256:abc (2 logs: rekor, vcs-log)');
    expect(logLine('a:: b\nc ::d')).toBe('a:: b\nc ::d');
  });
});
