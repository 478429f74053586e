/**
 * The actions' logic with plain values, in process: input parsing into typed objects (one
 * USAGE error naming the input), the summary and status wording, the 140-character status limit,
 * and run() against a recording ActionIo (one setFailed, outputs, secrets masked first).
 */
import { describe, it, expect } from '@jest/globals';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readBuildInputs, type BuildInputs } from '../../actions/build/inputs.js';
import { readVerifyInputs } from '../../actions/verify/inputs.js';
import { readDeployInputs } from '../../actions/deploy/inputs.js';
import { buildStatusLine, buildSummary } from '../../actions/build/summary.js';
import { statusDescription, type CommitStatus } from '../../actions/build/status.js';
import { scrub } from '../../actions/build/errors.js';
import { run } from '../../actions/build/run.js';
import type { ActionIo } from '../../actions/build/io.js';
import type { BuildResult } from '../../actions/build/result.js';
import { runUrl } from '../../actions/build/context.js';
import { readActionYml } from './runner.js';
import { readPromoteInputs } from '../../actions/promote/inputs.js';

const reader = (m: Record<string, string>) => (name: string) => m[name] ?? '';
const ENV = { RUNNER_TEMP: '/tmp/ct-logic-test', GITHUB_REPOSITORY: 'acme/app', GITHUB_SHA: 'f'.repeat(40), GITHUB_RUN_ID: '3' };

function usage(fn: () => unknown): { code?: string; input?: unknown } {
  try {
    fn();
  } catch (e) {
    return { code: (e as { code?: string }).code, input: (e as { details?: { input?: unknown } }).details?.input };
  }
  return {};
}

class RecordingIo implements ActionIo {
  calls: [string, ...unknown[]][] = [];
  setSecret(v: string) { this.calls.push(['setSecret', v]); }
  setOutput(n: string, v: string) { this.calls.push(['setOutput', n, v]); }
  info(m: string) { this.calls.push(['info', m]); }
  warning(m: string) { this.calls.push(['warning', m]); }
  setFailed(m: string) { this.calls.push(['setFailed', m]); }
  async summary(md: string) { this.calls.push(['summary', md]); }
  async idToken(aud: string): Promise<string> { this.calls.push(['idToken', aud]); throw new Error('no token endpoint here'); }
}

describe('build inputs', () => {
  // An input the code reads but action.yml does not declare draws a runner warning ("Unexpected
  // input") and is missing from the marketplace page and the workflow-parser's checks.
  it('every input readBuildInputs reads (the promote-* ones too) is declared in action.yml', () => {
    const declared = Object.keys(readActionYml('action.yml').inputs ?? {});
    const asked = new Set<string>();
    const given: Record<string, string> = { path: 'app', 'trust-store': 'ts.json', push: 'true', registry: 'ghcr.io/acme/app', 'promote-environment': 'staging', 'promote-app': 'a', 'promote-file': 'f.yaml', 'promote-policies': 'p', 'promote-gitlab-project': 'g/p', 'promote-token': 'glpat-x', 'promote-status-context': 'c' };
    const i = readBuildInputs((name) => {
      asked.add(name);
      return given[name] ?? '';
    }, ENV);
    expect(i.promote).toMatchObject({ forge: { provider: 'gitlab', project: 'g/p' }, statusContext: 'c' });
    expect([...asked].filter((n) => !declared.includes(n))).toEqual([]);
  });

  it('every input readPromoteInputs reads (gitlab-project too) is declared in actions/promote/action.yml', () => {
    const declared = Object.keys(readActionYml('actions/promote/action.yml').inputs ?? {});
    const asked = new Set<string>();
    const given: Record<string, string> = { environment: 'staging', app: 'a', bundle: 'r/x@sha256:' + 'a'.repeat(64), ctp: 'x.ctp', file: 'f.yaml', policies: 'p', 'trust-store': 'ts.json', 'gitlab-project': 'g/p', token: 'glpat-x', 'status-context': 'c' };
    const i = readPromoteInputs((name) => {
      asked.add(name);
      return given[name] ?? '';
    });
    expect(i.forge).toMatchObject({ provider: 'gitlab', project: 'g/p' });
    expect([...asked].filter((n) => !declared.includes(n))).toEqual([]);
  });

  it('defaults: keyless, public-good, quorum 2, sbom and provenance, context cerro-torre/build, output in RUNNER_TEMP', () => {
    const i = readBuildInputs(reader({ path: 'app' }), ENV);
    expect(i).toMatchObject({ source: { dir: 'app' }, signing: { mode: 'keyless', audience: 'sigstore' }, sigstore: { instance: 'public-good' }, logQuorum: 2, sbom: true, provenance: true, statusContext: 'cerro-torre/build', outputDir: '/tmp/ct-logic-test' });
    expect(i.ctx).toMatchObject({ repository: 'acme/app', runId: '3' });
  });

  it.each([
    [{}, 'path'],
    [{ path: 'a', image: 'r/x:1' }, 'path'],
    [{ path: 'a', sbom: 'yes' }, 'sbom'],
    [{ path: 'a', 'log-quorum': '-1' }, 'log-quorum'],
    [{ path: 'a', signing: 'key' }, 'key'],
    [{ path: 'a', 'fulcio-url': 'https://f.example' }, 'sigstore'],
    [{ path: 'a', sigstore: 'custom', 'fulcio-url': 'https://f.example' }, 'trusted-root'],
    [{ path: 'a', sigstore: 'custom', 'fulcio-url': 'ftp://f.example', 'trusted-root': 'r.json' }, 'fulcio-url'],
    [{ path: 'a', sigstore: 'custom', 'fulcio-url': 'https://u:p@f.example', 'trusted-root': 'r.json' }, 'fulcio-url'],
    [{ path: 'a', logs: 'log-a' }, 'logs'],
    [{ path: 'a', 'status-context': 'bad\ncontext' }, 'status-context'],
  ] as [Record<string, string>, string][])('%j → USAGE naming input %s', (given, input) => {
    expect(usage(() => readBuildInputs(reader(given), ENV))).toEqual({ code: 'USAGE', input });
  });

  it('needs somewhere to write: output-dir or RUNNER_TEMP', () => {
    expect(usage(() => readBuildInputs(reader({ path: 'a' }), {}))).toEqual({ code: 'USAGE', input: 'output-dir' });
  });
});

describe('verify and deploy inputs', () => {
  it('verify: exactly one of bundle and reference, a policy, anchored identity options', () => {
    expect(usage(() => readVerifyInputs(reader({ policy: 'p' }), ENV))).toEqual({ code: 'USAGE', input: 'bundle' });
    expect(usage(() => readVerifyInputs(reader({ bundle: 'b.ctp' }), ENV))).toEqual({ code: 'USAGE', input: 'policy' });
    expect(usage(() => readVerifyInputs(reader({ bundle: 'b', policy: 'p', 'certificate-identity': 'x' }), ENV)).code).toBe('USAGE');
    expect(readVerifyInputs(reader({ bundle: 'b', policy: 'p1\np2', 'certificate-identity': 'x', 'certificate-oidc-issuer': 'https://i' }), ENV)).toMatchObject({ policy: ['p1', 'p2'], identity: { issuer: 'https://i', subject: 'x' }, environment: 'production' });
  });

  it('deploy: a digest-pinned bundle, names the server accepts, label=value hosts', () => {
    const ok = { server: 'https://d.example', environment: 'staging', app: 'hello', bundle: `r.example/a/hello@sha256:${'a'.repeat(64)}` };
    expect(readDeployInputs(reader({ ...ok, hosts: 'zone=eu\nrole=web' }), ENV)).toMatchObject({ hosts: { zone: 'eu', role: 'web' }, audience: 'cerro-torre', wait: true });
    expect(usage(() => readDeployInputs(reader({ ...ok, bundle: 'r.example/a/hello:latest' }), ENV))).toEqual({ code: 'USAGE', input: 'bundle' });
    expect(usage(() => readDeployInputs(reader({ ...ok, app: 'Hello World' }), ENV))).toEqual({ code: 'USAGE', input: 'app' });
    expect(usage(() => readDeployInputs(reader({ ...ok, hosts: 'zone' }), ENV))).toEqual({ code: 'USAGE', input: 'hosts' });
    expect(usage(() => readDeployInputs(reader({ ...ok, server: '' }), ENV))).toEqual({ code: 'USAGE', input: 'server' });
  });
});

describe('summary and status wording', () => {
  const result: BuildResult = {
    ok: true, name: 'hello', version: '1.0.0', bundlePath: '/t/hello-1.0.0.ctp', imageDigest: `sha256:${'1'.repeat(64)}`, bundleDigest: `sha256:${'2'.repeat(64)}`,
    signing: 'keyless', identity: { issuer: 'https://token.actions.githubusercontent.com', subject: 'https://github.com/a/b/.github/workflows/x.yml@refs/heads/main' },
    attestations: [{ predicateType: 'https://slsa.dev/provenance/v1', path: 'attestations/provenance.sigstore.json', digest: `sha256:${'3'.repeat(64)}`, rekorLogIndex: 7, logs: [{ logId: 'log-a', ok: true, logIndex: 4 }, { logId: 'log-b', ok: false, message: 'NETWORK_ERROR: down' }] }],
    verification: { decision: 'ALLOW', code: null, logEntriesVerified: 1 }, warnings: ['a | pipe'],
  };
  it('the summary names what was signed, by whom, where it was logged and how it verified', () => {
    const md = buildSummary(result);
    for (const s of [result.imageDigest!, result.identity!.subject!, '#7', 'log-a #4', 'log-b failed', 'ALLOW', '- `a | pipe`']) expect(md).toContain(s);
  });
  it('the status line fits GitHub after statusDescription(), and failures lead with their code', () => {
    expect(statusDescription(buildStatusLine({ ...result, name: 'x'.repeat(300) })).length).toBeLessThanOrEqual(140);
    expect(buildStatusLine({ ...result, ok: false, error: { code: 'POLICY_VIOLATION', message: 'no' } })).toBe('POLICY_VIOLATION: no');
    expect(statusDescription('a\n  b')).toBe('a b');
  });
  it('scrub removes every secret, runUrl points at the attempt', () => {
    expect(scrub('token=abcd1234 and abcd1234', ['abcd1234'])).toBe('token=*** and ***');
    expect(runUrl({ repository: 'a/b', runId: '9', runAttempt: '2', serverUrl: 'https://github.com', apiUrl: '' })).toBe('https://github.com/a/b/actions/runs/9/attempts/2');
  });
});

describe('build run() with a recording io', () => {
  it('masks secrets first, fails once with the code, posts pending then failure, writes outputs and the summary', async () => {
    const io = new RecordingIo();
    const statuses: CommitStatus[] = [];
    const temp = await mkdtemp(join(tmpdir(), 'ct-logic-'));
    const i: BuildInputs = { ...readBuildInputs(reader({ path: 'examples/hello', 'github-token': 'ghs_abcdef123456', 'registry-password': 'hunter22' }), { ...ENV, RUNNER_TEMP: temp }) };
    const r = await run(i, io, async (s) => void statuses.push(s)).finally(async () => {
      expect((await readdir(temp)).filter((f) => f.startsWith('.ct-'))).toEqual([]); // no half-written file left
      await rm(temp, { recursive: true, force: true });
    });
    expect(r.ok).toBe(false);
    expect(r.error?.code).toBe('USAGE'); // no OIDC token endpoint: keyless cannot sign
    expect(io.calls.slice(0, 2)).toEqual([['setSecret', 'ghs_abcdef123456'], ['setSecret', 'hunter22']]);
    expect(io.calls.filter((c) => c[0] === 'setFailed')).toHaveLength(1);
    expect(io.calls.find((c) => c[0] === 'idToken')).toEqual(['idToken', 'sigstore']);
    expect(statuses.map((s) => s.state)).toEqual(['pending', 'failure']);
    expect(io.calls.filter((c) => c[0] === 'setOutput').map((c) => c[1])).toEqual(expect.arrayContaining(['bundle-path', 'image-digest']));
    expect(io.calls.some((c) => c[0] === 'summary' && String(c[1]).includes('USAGE'))).toBe(true);
  });
});
