import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PolicyStore } from '../../src/policy/store.js';
import { lintTexts } from '../../src/policy/lint.js';
import { evaluate } from '../../src/policy/evaluate.js';
import { input, KEY_A, KEY_POLICY, v2 } from './helpers.js';

describe('PolicyStore: a repository loads whole or not at all', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ct-policy-store-'));
    await mkdir(join(dir, 'prod'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('an empty file and a too-large one at the same path are told apart across reloads (the compile cache)', async () => {
    const f = join(dir, 'p.policy.yaml');
    await writeFile(f, '');
    const store = new PolicyStore([dir]);
    const kinds = async () => (await store.reload()).issues.map((i) => i.kind);
    expect(await kinds()).not.toContain('too-large');
    await writeFile(f, `# ${'x'.repeat(2 << 20)}\n`);
    expect(await kinds()).toEqual(['too-large']);
    await writeFile(f, '');
    expect(await kinds()).not.toContain('too-large');
  });

  it('keeps the previous good set when a reload fails, and swaps when it is fixed', async () => {
    await writeFile(join(dir, 'prod', 'policy.yaml'), KEY_POLICY);
    const dev = v2('dev', `mode: permissive\nmatch:\n  environments: [dev]\nsigners:\n  - keyId: ${KEY_A}\n`);
    await writeFile(join(dir, 'dev.policy.yaml'), dev);
    const store = new PolicyStore([dir]);
    expect(store.current).toBeUndefined();
    const first = await store.reload();
    expect(first.ok).toBe(true);
    const good = store.current!;
    expect(good.policies.map((p) => p.name)).toEqual(['dev', 'keys']);

    // One good edit and one broken file in the same push: nothing of it is taken.
    await writeFile(join(dir, 'dev.policy.yaml'), dev.replace('permissive', 'strict'));
    await writeFile(join(dir, 'prod', 'policy.yaml'), `${KEY_POLICY}logQuorum: 3\n`);
    const broken = await store.reload();
    expect(broken.ok).toBe(false);
    expect(broken.error?.code).toBe('POLICY_INVALID');
    expect(broken.issues[0]).toMatchObject({ file: join(dir, 'prod', 'policy.yaml'), line: 12, severity: 'error' });
    expect(store.current).toBe(good);
    expect(broken.digest).toBe(good.digest);
    expect(store.current!.get('dev')!.mode).toBe('permissive');
    expect(evaluate(store.current!, input()).allow).toBe(true);

    await writeFile(join(dir, 'prod', 'policy.yaml'), KEY_POLICY);
    const fixed = await store.reload();
    expect(fixed.ok).toBe(true);
    expect(store.current).not.toBe(good);
    expect(store.current!.get('dev')!.mode).toBe('strict');
    expect(fixed.digest).not.toBe(good.digest);
  });

  it('a reload recompiles only the files that changed', async () => {
    const dev = v2('dev', `mode: permissive\nmatch:\n  environments: [dev]\nsigners:\n  - keyId: ${KEY_A}\n`);
    await writeFile(join(dir, 'prod', 'policy.yaml'), KEY_POLICY);
    await writeFile(join(dir, 'dev.policy.yaml'), dev);
    const store = new PolicyStore([dir]);
    await store.reload();
    const first = store.current!;
    await store.reload();
    expect(store.current!.get('keys')).toBe(first.get('keys'));
    expect(store.current!.digest).toBe(first.digest);
    await writeFile(join(dir, 'dev.policy.yaml'), dev.replace('[dev]', '[dev, preview]'));
    await store.reload();
    expect(store.current!.get('keys')).toBe(first.get('keys'));
    expect(store.current!.get('dev')).not.toBe(first.get('dev'));
    expect(store.current!.get('dev')!.match.environments!.map((m) => m.source)).toEqual(['dev', 'preview']);
  });

  it('an unreadable repository leaves no set', async () => {
    const store = new PolicyStore([join(dir, 'missing')]);
    const r = await store.reload();
    expect(r).toMatchObject({ ok: false, error: { code: 'IO_ERROR' } });
    expect(store.current).toBeUndefined();
  });
});

describe('lint', () => {
  const base = `match:\n  environments: [prod]\nsigners:\n  - keyId: ${KEY_A}\n`;
  it('warns about expired policies, unknown predicate types, overlapping matches and unanchored patterns', () => {
    const texts = [
      { file: 'a.policy.yaml', text: v2('a', `expires: "2020-01-01T00:00:00Z"\n${base}attestations:\n  - predicateType: https://slsa.dev/provenance/v7\n`) },
      { file: 'b.policy.yaml', text: v2('b', `mode: audit\nmatch:\n  environments: ['pro*']\nsigners:\n  - issuer: https://gitlab.com\n    subject: { regex: 'https://gitlab.com/acme/.*' }\n`) },
    ];
    const r = lintTexts(texts, Date.parse('2026-01-01T00:00:00Z'));
    expect(r.errors).toBe(0);
    expect(r.issues.map((i) => [i.file, i.line, i.kind])).toEqual([
      ['a.policy.yaml', 4, 'expired'],
      ['a.policy.yaml', 10, 'unknown-predicate-type'],
      ['b.policy.yaml', 6, 'overlap'],
      ['b.policy.yaml', 9, 'unanchored-pattern'],
    ]);
  });

  it('finds no overlap between disjoint environments', () => {
    const r = lintTexts([
      { file: 'a.policy.yaml', text: v2('a', base) },
      { file: 'b.policy.yaml', text: v2('b', base.replace('[prod]', "['dev-*', staging]")) },
    ]);
    expect(r.issues).toEqual([]);
  });
});
