/**
 * `ct <command> --help` is the first documentation an adopter reads: every command, argument and
 * option says what it is (three `ct profile` file arguments had no words at all).
 */
import { describe, expect, it } from '@jest/globals';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/program.js';

describe('ct --help', () => {
  it('describes every command, every argument and every option', async () => {
    const missing: string[] = [];
    let seen = 0;
    const walk = (c: Command, path: string[]) => {
      seen++;
      const at = ['ct', ...path].join(' ');
      if (!c.description()) missing.push(`${at}: no description`);
      for (const a of c.registeredArguments) if (!a.description) missing.push(`${at} <${a.name()}>: no description`);
      for (const o of c.options) if (!o.description) missing.push(`${at} ${o.flags}: no description`);
      for (const s of c.commands) walk(s, [...path, s.name()]);
    };
    walk(await buildProgram(['node', 'ct']), []);
    expect(seen).toBeGreaterThan(50);
    expect(missing).toEqual([]);
  });
});
