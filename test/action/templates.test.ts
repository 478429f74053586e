/**
 * The workflow templates (templates/github/) and the examples using them: every step that uses a
 * Cerro Torre action passes only inputs its action.yml declares and every required one, and the
 * job grants what the action needs (id-token: write for keyless signing and for deploying with
 * the job's token, statuses: write for the commit status). The GitLab example's component
 * includes resolve with the components' spec inputs.
 */
import { describe, it, expect } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { readActionYml, REPO } from './runner.js';
import { resolveComponent } from './gitlab-components.js';

interface Step { uses?: string; with?: Record<string, unknown> }
interface Workflow { permissions?: Record<string, string>; jobs: Record<string, { permissions?: Record<string, string>; steps?: Step[] }> }

const WORKFLOWS = [
  ...readdirSync(join(REPO, 'templates/github')).map((f) => `templates/github/${f}`),
  ...readdirSync(join(REPO, 'examples/github')).map((f) => `examples/github/${f}`),
];

function actionOf(uses: string): string | undefined {
  const m = /^cerro-torre\/cerro-torre(\/actions\/(verify|deploy|policy-check))?@/.exec(uses);
  if (!m) return undefined;
  return m[2] ? `actions/${m[2]}/action.yml` : 'action.yml';
}

describe('GitHub workflow templates and examples', () => {
  it('there are templates for build-and-sign, the policy PR check and deploy', () => {
    expect(WORKFLOWS).toEqual(expect.arrayContaining(['templates/github/build-and-sign.yml', 'templates/github/policy-check.yml', 'templates/github/policy-repo-check.yml', 'templates/github/deploy.yml']));
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
    expect(used).toBeGreaterThan(0);
  });
});

describe('GitLab example', () => {
  it('includes the components with inputs they declare, resolving into jobs', () => {
    const doc = parseYaml(readFileSync(join(REPO, 'examples/gitlab/.gitlab-ci.yml'), 'utf8')) as { include: { component: string; inputs?: Record<string, unknown> }[] };
    const names = doc.include.map((inc) => {
      const m = /\/cerro-torre\/cerro-torre\/([\w-]+)@/.exec(inc.component);
      expect(m).not.toBeNull();
      const jobs = resolveComponent(`templates/gitlab/${m![1]}.yml`, inc.inputs ?? {});
      expect(Object.keys(jobs)).toHaveLength(1);
      return m![1];
    });
    expect(names).toEqual(['build-sign', 'verify', 'deploy']);
  });
});
