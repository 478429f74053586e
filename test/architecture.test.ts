/**
 * The dependency direction of STYLE.md, checked on every import: src/ (the library) never imports
 * server/, host/, actions/, express or @actions/core and never calls process.exit; server/ and
 * host/ never import each other (they share wire types in src/protocol); src/core depends on no
 * other part of src/.
 */
import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { repoRoot } from './support/cli.js';

function files(dir: string): string[] {
  const out: string[] = [];
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (n.endsWith('.ts') && !n.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function importsOf(file: string): { spec: string; target: string | null }[] {
  const text = readFileSync(file, 'utf8');
  const out: { spec: string; target: string | null }[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2];
    out.push({ spec, target: spec.startsWith('.') ? relative(repoRoot, resolve(dirname(file), spec)) : null });
  }
  return out;
}

const area = (rel: string | null) => (rel ? rel.split('/')[0] : null);

describe('dependency direction', () => {
  const lib = files(join(repoRoot, 'src'));

  it('the library never imports server/, host/, actions/, express or @actions/core, nor exits the process', () => {
    const bad: string[] = [];
    for (const f of lib) {
      for (const { spec, target } of importsOf(f)) {
        if (['server', 'host', 'actions'].includes(area(target) ?? '') || spec === 'express' || spec.startsWith('@actions/')) bad.push(`${relative(repoRoot, f)} → ${spec}`);
      }
      if (/process\.exit\(/.test(readFileSync(f, 'utf8'))) bad.push(`${relative(repoRoot, f)} calls process.exit`);
    }
    expect(bad).toEqual([]);
  });

  it('server/ and host/ never import each other', () => {
    const bad: string[] = [];
    for (const [from, forbidden] of [['server', 'host'], ['host', 'server']] as const) {
      for (const f of files(join(repoRoot, from))) for (const { spec, target } of importsOf(f)) if (area(target) === forbidden) bad.push(`${relative(repoRoot, f)} → ${spec}`);
    }
    expect(bad).toEqual([]);
  });

  it('src/core depends on no other part of the library', () => {
    const bad: string[] = [];
    for (const f of files(join(repoRoot, 'src', 'core'))) {
      for (const { spec, target } of importsOf(f)) if (target && target.startsWith('src/') && !target.startsWith('src/core/')) bad.push(`${relative(repoRoot, f)} → ${spec}`);
    }
    expect(bad).toEqual([]);
  });
});
