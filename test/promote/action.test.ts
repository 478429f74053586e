/**
 * The promote action (actions/promote) as the runner calls it, with the inputs of action.yml,
 * against the GitHub API stand-in; and the example pull-request body for docs/promotion.md,
 * written by this test from a real run (the docs test checks it is current).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startGitHubApi, type GitHubApi } from '../support/github-api.js';
import { FakeRepo } from '../support/github-repo.js';
import { repoRoot } from '../support/cli.js';
import { readPromoteInputs } from '../../actions/promote/inputs.js';
import { run } from '../../actions/promote/run.js';
import type { ActionIo } from '../../actions/build/io.js';
import { buildFixture, desiredState, type PromoteFixture } from './fixtures.js';

let api: GitHubApi;
let fx: PromoteFixture;
const FILE = 'deploy/desired.yaml';

beforeAll(async () => {
  api = await startGitHubApi();
  fx = await buildFixture();
  await writeFile(join(fx.dir, 'staging.policy.yaml'), fx.policyText);
});
afterAll(async () => {
  await api.close();
  await fx.cleanup();
});

function recordingIo() {
  const outputs: Record<string, string> = {};
  const failed: string[] = [];
  const secrets: string[] = [];
  const io: ActionIo = { setSecret: (s) => void secrets.push(s), setOutput: (n, v) => void (outputs[n] = v), info: () => {}, warning: () => {}, setFailed: (m) => void failed.push(m), summary: async () => {}, idToken: async () => '' };
  return { io, outputs, failed, secrets };
}

describe('actions/promote', () => {
  it('opens the pull request from the action inputs; the example body in docs/promotion.md is this run\'s', async () => {
    const repo = new FakeRepo('acme', 'deploy', { [FILE]: desiredState(fx.v1.reference, fx.v1.reference) });
    repo.attach(api);
    const inputs: Record<string, string> = {
      environment: 'staging', app: 'hello', bundle: fx.v2.reference, ctp: fx.v2.path, repository: 'acme/deploy', file: FILE, token: 'ghs_action', 'api-url': api.url, 'api-allowed-addresses': '127.0.0.1',
      'trust-store': join(fx.dir, 'trust-store.json'), policies: join(fx.dir, 'staging.policy.yaml'), current: fx.v1.path, 'fetch-current': 'true',
    };
    const r = recordingIo();
    const res = await run(readPromoteInputs((n) => inputs[n] ?? ''), r.io);
    expect(r.failed).toEqual([]);
    expect(res?.outcome).toBe('opened');
    expect(r.outputs).toMatchObject({ 'promotion-outcome': 'opened', 'promotion-number': '1', 'promotion-allowed': 'true' });
    expect(r.secrets).toContain('ghs_action');
    expect(api.errors).toEqual([]);

    // docs/promotion.md shows this body between its markers (digests and key ids normalised).
    const body = repo.pulls[0].body
      .split(fx.v2.imageDigest).join('sha256:<image 2.0>')
      .split(fx.v1.imageDigest).join('sha256:<image 1.0>')
      .split(fx.signer.keyId).join('sha256:<builder key>')
      .replace(/policy set: sha256:[0-9a-f]{64}/, 'policy set: sha256:<digest of the policies>');
    const docPath = join(repoRoot, 'docs', 'promotion.md');
    const doc = readFileSync(docPath, 'utf8');
    const start = '<!-- example-body:start -->\n````markdown\n';
    const end = '\n````\n<!-- example-body:end -->';
    const i = doc.indexOf(start);
    const j = doc.indexOf(end);
    expect(i).toBeGreaterThan(0);
    const want = `${doc.slice(0, i + start.length)}${body}${doc.slice(j)}`;
    if (process.env.CT_UPDATE_DOCS === '1') writeFileSync(docPath, want);
    else expect(doc).toBe(want);
  });

  it('a missing input is a clear USAGE error naming it', () => {
    expect(() => readPromoteInputs((n) => ({ environment: 'staging' } as Record<string, string>)[n] ?? '')).toThrow(/input repository: required/);
  });
});
