import { describe, expect, it } from '@jest/globals';
import { overlaySources, MAX_PROPOSAL_FILES } from '../../src/policy/impact.js';
import { impactHeapMb, impactSlot } from '../../src/policy/impact-thread.js';
import { compileTexts } from '../../src/policy/load.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../support/cli.js';
import { codeOf } from '../support/error-code.js';
import { withSbom } from './helpers.js';

const base = [{ file: '/repo/prod.policy.yaml', text: 'a', defaultName: 'prod.policy' }, { file: '/repo/dev/policy.yaml', text: 'b', defaultName: 'dev.policy' }];

describe('policy proposals laid over the repository', () => {
  it('replaces, adds and removes by path relative to the root', () => {
    const out = overlaySources(base, '/repo', { files: [{ path: 'prod.policy.yaml', text: 'new' }, { path: 'staging/policy.yaml', text: 'c' }], remove: ['dev/policy.yaml'] });
    expect(out.map((s) => [s.file, s.text])).toEqual([['/repo/prod.policy.yaml', 'new'], ['/repo/staging/policy.yaml', 'c']]);
  });

  it('refuses paths that leave the repository, hidden or non-policy files, and oversized proposals', () => {
    for (const path of ['../etc/x.policy.yaml', '/abs/policy.yaml', '.git/policy.yaml', 'a/../../policy.yaml', 'notes.md', 'fixtures/allow.yaml', 'a\nb.policy.yaml', 'a\\b.policy.yaml', '', 'x'.repeat(300)]) {
      expect(codeOf(() => overlaySources(base, '/repo', { files: [{ path, text: 'x' }] }))).toBe('USAGE');
    }
    expect(codeOf(() => overlaySources(base, '/repo', { files: [{ path: 'p.policy.yaml', text: 'x'.repeat(300 * 1024) }] }))).toBe('USAGE');
    const many = Array.from({ length: MAX_PROPOSAL_FILES + 1 }, (_, i) => ({ path: `p${i}.policy.yaml`, text: 'x' }));
    expect(codeOf(() => overlaySources(base, '/repo', { files: many }))).toBe('USAGE');
  });
});

describe('policy previews on a thread of their own', () => {
  const limits = { timeoutMs: 10_000, concurrent: 1, memoryMb: 64 };
  const input = (proposal: unknown) => ({ base: [], root: '/repo', proposal: proposal as never, deploymentsJson: '{"deployments":[]}', now: 0, currentDigest: compileTexts([]).set!.digest });

  it('takes a slot before any work, refuses beyond the limit, and frees it whatever the judgement did', async () => {
    const one = impactSlot(limits);
    expect(codeOf(() => impactSlot(limits))).toBe('POLICY_IMPACT_BUSY');
    // A task that cannot even reach its thread (workerData that does not clone) still frees its slot.
    await expect(one.run(input({ files: [], f: () => 1 }))).rejects.toThrow();
    one.release();
    one.release(); // once only
    const two = impactSlot(limits);
    expect(codeOf(() => impactSlot(limits))).toBe('POLICY_IMPACT_BUSY');
    // The proposal's own problems come back as they are (USAGE: a path leaving the repository).
    await expect(two.run(input({ files: [{ path: '../x.policy.yaml', text: 'x' }] }))).rejects.toMatchObject({ code: 'USAGE' });
    // A client gone before the answer ends the judgement.
    const gone = new AbortController();
    gone.abort();
    await expect(two.run(input({ files: [] }), gone.signal)).rejects.toThrow(/the request ended/);
    // A fleet's live evidence over the reader's 1 MiB bound for one document is judged all the same.
    const example = JSON.parse(readFileSync(join(repoRoot, 'examples', 'policy-repo', 'deployments.example.json'), 'utf8')) as { deployments: { id: string }[] };
    const fleet = Array.from({ length: 400 }, (_, i) => ({ ...example.deployments[i % 2], id: `d${i}` }));
    const many = { ...input({ files: [] }), deploymentsJson: JSON.stringify({ deployments: fleet }) };
    expect(many.deploymentsJson.length).toBeGreaterThan(1024 * 1024);
    const judged = await two.run(many);
    expect(judged).toMatchObject({ ok: true, body: { counts: { unchanged: 400 } } });
    // One live deployment whose evidence alone is over that bound (an SBOM of a large image) too.
    const large = { ...input({ files: [] }), deploymentsJson: withSbom(JSON.stringify(example), 8000) };
    expect(JSON.stringify(JSON.parse(large.deploymentsJson).deployments[0]).length).toBeGreaterThan(1024 * 1024);
    await expect(two.run(large)).resolves.toMatchObject({ ok: true, body: { counts: { unchanged: 2 } } });
    // Evidence that takes more memory parsed than the thread may have: the server's limit, said as such (not the proposal's fault).
    const heavy = JSON.parse(JSON.stringify(example));
    heavy.deployments[0].evidence.attestations[0].predicate = Array(1_000_000).fill({});
    const heavyJson = JSON.stringify(heavy);
    expect(impactHeapMb({ ...limits, memoryMb: 8 }, heavyJson)).toBe(8 + Math.ceil((6 * heavyJson.length) / (1024 * 1024)));
    const small = impactSlot({ ...limits, concurrent: 3, memoryMb: 8 });
    try {
      await expect(small.run({ ...input({ files: [] }), deploymentsJson: heavyJson })).rejects.toMatchObject({ code: 'POLICY_IMPACT_TOO_LARGE', message: expect.stringContaining('preview one environment at a time') });
    } finally {
      small.release();
    }
    // The server's own live records unreadable: their code (the API answers 500), not the proposal's fault.
    await expect(two.run({ ...input({ files: [] }), deploymentsJson: '{"deployments":[{"id":1}]}' })).rejects.toMatchObject({ code: 'JSON_INVALID' });
    // Sources changed since the set in force was loaded: said, not judged.
    await expect(two.run({ ...input({ files: [] }), currentDigest: 'sha256:other' })).resolves.toEqual({ stale: true });
    two.release();
    impactSlot(limits).release();
  });
});
