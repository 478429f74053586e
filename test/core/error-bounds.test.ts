/**
 * #13 finding 2: no error can carry an unbounded message or details, whatever input built it —
 * bounded in CtError itself, in the CLI's last-resort output and in the server's error answers.
 */
import { describe, it, expect } from '@jest/globals';
import { CtError, ERROR_LIMITS, boundDetails, boundText } from '../../src/core/errors.js';
import { parseManifest } from '../../src/bundle/manifest.js';
import { runCommand } from '../../src/cli/io.js';
import { sendError } from '../../server/http-error.js';

describe('CtError bounds', () => {
  it('a 36 MB message is cut to the limit with a marker saying how much was cut', () => {
    const e = new CtError('MANIFEST_INVALID', 'x'.repeat(36 * 1024 * 1024));
    expect(e.message.length).toBeLessThanOrEqual(ERROR_LIMITS.messageChars);
    expect(e.message).toMatch(/more characters truncated\]$/);
    expect(JSON.stringify(e.toJSON()).length).toBeLessThan(ERROR_LIMITS.messageChars + 200);
  });

  it('details with a million problems, long strings and deep nesting stay within the budget', () => {
    let deep: unknown = 'bottom';
    for (let i = 0; i < 10_000; i++) deep = { deep };
    const details = {
      problems: Array.from({ length: 1_000_000 }, (_, i) => ({ path: `t${i}`, message: 'unknown field' })),
      long: 'y'.repeat(1_000_000),
      deep,
      __proto__: { polluted: true },
    };
    const e = new CtError('MANIFEST_INVALID', 'bad', details);
    const json = JSON.stringify(e.details);
    expect(json.length).toBeLessThan(ERROR_LIMITS.detailsChars * 2);
    expect((e.details.problems as unknown[]).length).toBeLessThanOrEqual(ERROR_LIMITS.items + 1);
    expect(String((e.details.problems as unknown[]).at(-1))).toMatch(/more items truncated/);
    expect((e.details.long as string).length).toBeLessThanOrEqual(ERROR_LIMITS.stringChars);
    expect(json).toContain('nested too deep');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('a cut never splits a surrogate pair (a lone half is not valid UTF-8)', () => {
    for (let at = 1; at < 6; at++) {
      const text = `${'a'.repeat(at)}${'😀'.repeat(300)}`;
      const cut = boundText(text, 300);
      expect(cut.length).toBeLessThanOrEqual(300);
      expect(Buffer.from(cut, 'utf8').toString('utf8')).toBe(cut);
    }
  });

  it('small messages and details are kept as they are', () => {
    const e = new CtError('TAR_MALFORMED', 'short', { where: 'a.ctp', offset: 512, legacy: true, list: [1, 2] });
    expect(e.message).toBe('short');
    expect(e.details).toEqual({ where: 'a.ctp', offset: 512, legacy: true, list: [1, 2] });
    expect(boundText('abc', 10)).toBe('abc');
    expect(boundDetails({ a: null })).toEqual({ a: null });
  });

  it('a string cut near the end of the details budget still says how much was cut', () => {
    const d = boundDetails({ a: Array.from({ length: 16 }, () => 'p'.repeat(998)), c: 'q'.repeat(301), b: 'y'.repeat(100_000) }) as { b: string };
    expect(d.b).toMatch(/… \[\d+ more characters truncated\]$/);
  });

  it('a manifest with thousands of bad keys: the message names 20 and counts the rest', () => {
    const text = Array.from({ length: 3000 }, (_, i) => `k${i} = 1`).join('\n');
    try {
      parseManifest(text);
      throw new Error('accepted');
    } catch (e) {
      const err = e as CtError;
      expect(err.code).toBe('MANIFEST_INVALID');
      expect(err.message).toMatch(/and \d+ more$/);
      expect(err.message.length).toBeLessThanOrEqual(ERROR_LIMITS.messageChars);
      expect(err.details.problemCount).toBeGreaterThan(3000);
    }
  });

  it('the CLI prints a bounded line even for an error that is not a CtError', async () => {
    const out: string[] = [];
    const code = await runCommand({ out: (t) => void out.push(t), err: (t) => void out.push(t) }, async () => {
      throw new Error('z'.repeat(5_000_000));
    });
    expect(code).toBe(1);
    expect(out.join('').length).toBeLessThanOrEqual(ERROR_LIMITS.messageChars + 20);
  });

  it('the server answers bounded errors whatever built them', () => {
    let body: unknown;
    const res = { status: () => res, json: (b: unknown) => void (body = b) } as unknown as Parameters<typeof sendError>[0];
    sendError(res, 400, 'BAD_REQUEST', 'm'.repeat(2_000_000), { list: Array.from({ length: 100_000 }, (_, i) => i) });
    expect(JSON.stringify(body).length).toBeLessThan(ERROR_LIMITS.messageChars + ERROR_LIMITS.detailsChars * 2);
  });
});
