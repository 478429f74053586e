/**
 * Every GitHub workflow of the repository (starter workflows in workflow-templates/, examples, the
 * policy-repository starter; found by ci-files.ts): every step that uses a Cerro Torre action (by
 * `cerro-torre/cerro-torre[/<path>]@ref` or a local `./<path>`) passes only inputs its action.yml
 * declares and every required one, and the
 * job grants what the action needs (id-token: write for keyless signing and for deploying with
 * the job's token, statuses: write for the commit status). The GitLab example's component
 * includes resolve with the components' spec inputs.
 */
import { describe, it, expect } from '@jest/globals';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { readActionYml, REPO } from './runner.js';
import { componentFile, resolveComponent } from './gitlab-components.js';
import { ciFiles } from './ci-files.js';
import { compileTexts, readPolicySources } from '../../src/policy/load.js';
import { evaluate } from '../../src/policy/evaluate.js';
import { readPolicyInput } from '../../src/policy/input.js';
import { parseSource } from '../../src/policy/source.js';
import { runPolicyTests } from '../../src/policy/suite.js';

interface Step { uses?: string; with?: Record<string, unknown> }
interface Workflow { permissions?: Record<string, string>; jobs: Record<string, { permissions?: Record<string, string>; steps?: Step[] }> }

const WORKFLOWS = ciFiles().workflows;

/** The action.yml in this repository a `uses:` names, or undefined for another repository's action. */
function actionOf(uses: string): string | undefined {
  const m = /^cerro-torre\/cerro-torre((?:\/[\w.-]+)*)@[\w.-]+$/.exec(uses) ?? /^\.((?:\/[\w.-]+)*)$/.exec(uses);
  if (!m) return undefined;
  const yml = `${m[1].replace(/^\//, '')}${m[1] ? '/' : ''}action.yml`;
  if (!existsSync(join(REPO, yml))) throw new Error(`${uses}: no ${yml} in this repository`);
  return yml;
}

describe('GitHub workflow templates and examples', () => {
  it('there are templates for build-and-sign, the policy PR check and deploy', () => {
    expect(WORKFLOWS).toEqual(expect.arrayContaining(['workflow-templates/build-and-sign.yml', 'workflow-templates/policy-check.yml', 'examples/policy-repo/.github/workflows/policy-check.yml', 'workflow-templates/deploy.yml']));
    expect(actionOf('cerro-torre/cerro-torre/actions/verify@v1')).toBe('actions/verify/action.yml');
    expect(actionOf('./actions/deploy')).toBe('actions/deploy/action.yml');
    expect(actionOf('actions/checkout@v4')).toBeUndefined();
    expect(() => actionOf('cerro-torre/cerro-torre/actions/nope@v1')).toThrow('no actions/nope/action.yml');
  });

  it.each(WORKFLOWS)('%s uses the actions with declared inputs and the permissions they need', (file) => {
    const wf = parseYaml(readFileSync(join(REPO, file), 'utf8')) as Workflow;
    let used = 0;
    for (const [, job] of Object.entries(wf.jobs)) {
      const perms = { ...(wf.permissions ?? {}), ...(job.permissions ?? {}) };
      for (const step of job.steps ?? []) {
        const yml = step.uses ? actionOf(step.uses) : undefined;
        if (!yml) continue;
        used++;
        const spec = readActionYml(yml).inputs ?? {};
        const given = Object.keys(step.with ?? {});
        expect(given.filter((k) => !(k in spec))).toEqual([]);
        expect(Object.entries(spec).filter(([k, v]) => v.required && !given.includes(k)).map(([k]) => k)).toEqual([]);
        const keyless = yml === 'action.yml' && (step.with?.signing ?? 'keyless') === 'keyless';
        const deployWithToken = yml.includes('deploy') && !step.with?.['api-key'];
        if (keyless || deployWithToken) expect(perms['id-token']).toBe('write');
        expect(perms.statuses).toBe('write');
        if (yml.includes('policy-check')) expect(perms['pull-requests']).toBe('write');
      }
    }
    // starters and examples exist to show the actions; the project's own workflows (release) need not use them
    if (!file.startsWith('.github/workflows/')) expect(used).toBeGreaterThan(0);
  });

  // A pull request's files are read (policy test cases, the app built): a checkout that keeps the
  // job token in .git/config lets one of them quote it into a comment or a log.
  it.each(WORKFLOWS)('%s checks out pull-request code without persisting the job token', (file) => {
    const wf = parseYaml(readFileSync(join(REPO, file), 'utf8')) as Workflow & { on?: unknown };
    const on = wf.on;
    const onPr = on === 'pull_request' || (Array.isArray(on) ? on.includes('pull_request') : typeof on === 'object' && on !== null && ('pull_request' in on || 'pull_request_target' in on));
    const checkouts = Object.values(wf.jobs).flatMap((j) => (j.steps ?? []).filter((s) => s.uses?.startsWith('actions/checkout@')));
    if (!onPr) return;
    expect(checkouts.length).toBeGreaterThan(0);
    for (const s of checkouts) expect(s.with?.['persist-credentials']).toBe(false);
  });
});

// The starter builds the PR with log-quorum 1 and no trust store, signed by its own workflow on
// the PR's ref: the environment it verifies for must have a shipped policy that allows exactly that.
describe('GitHub starter policy check', () => {
  it('judges the PR build it makes for an environment whose shipped policy allows it', async () => {
    const wf = parseYaml(readFileSync(join(REPO, 'workflow-templates/policy-check.yml'), 'utf8')) as Workflow;
    const steps = Object.values(wf.jobs).flatMap((j) => j.steps ?? []);
    const build = steps.find((s) => s.uses?.startsWith('cerro-torre/cerro-torre@'))!;
    const verify = steps.find((s) => s.uses?.startsWith('cerro-torre/cerro-torre/actions/verify@'))!;
    expect([build.with?.['log-quorum'], build.with?.['trust-store'], verify.with?.['trust-store']]).toEqual(['1', undefined, undefined]);
    // The identity the template asks for, as GitHub fills it in for PR #7 of example-org/shop.
    const identity = String(verify.with?.['certificate-identity']).replace('${{ github.repository }}', 'example-org/shop').replace('${{ github.ref }}', 'refs/pull/7/merge');
    const fixture = join(REPO, 'policies/pull-request/fixtures/pr-build.yaml');
    const src = parseSource(fixture, readFileSync(fixture, 'utf8')).source!;
    const value = structuredClone(src.value) as { host: { environment: string }; evidence: { attestations: { signers: { subject: string }[]; logOperators: string[] }[] } };
    value.host.environment = String(verify.with?.environment);
    for (const a of value.evidence.attestations) {
      a.signers[0].subject = identity;
      expect(a.logOperators).toEqual(['sigstore']);
    }
    const loaded = compileTexts(await readPolicySources([join(REPO, 'policies')]));
    const input = readPolicyInput(value, src).input!;
    const d = evaluate(loaded.set!, input);
    expect({ allow: d.allow, violations: d.violations.map((v) => v.code) }).toEqual({ allow: true, violations: [] });
    expect(d.policies).toEqual(['pull-request']);
  });

  // docs/ci.md says to copy policies/pull-request with the template: its suite must pass there alone.
  it('the pull-request policy\'s suite passes on its own, as copied, and beside the other policies', async () => {
    for (const dir of ['policies/pull-request', 'policies']) {
      const r = await runPolicyTests(join(REPO, dir));
      expect({ dir, ok: r.ok, failed: r.cases.filter((c) => !c.passed).map((c) => c.name), errors: r.errors }).toEqual({ dir, ok: true, failed: [], errors: [] });
    }
  });
});

describe('GitLab example', () => {
  it('includes the components with inputs they declare, resolving into jobs', () => {
    const doc = parseYaml(readFileSync(join(REPO, 'examples/gitlab/.gitlab-ci.yml'), 'utf8')) as { include: { component: string; inputs?: Record<string, unknown> }[] };
    const names = doc.include.map((inc) => {
      const file = componentFile(inc.component);
      const jobs = resolveComponent(file, inc.inputs ?? {});
      expect(Object.keys(jobs)).toHaveLength(1);
      return file.replace(/^templates\/|\.yml$/g, '');
    });
    expect(names).toEqual(['build-sign', 'verify', 'deploy']);
  });
});
