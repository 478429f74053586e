// GitLab CI entry of the policy check (templates/policy-check.yml): CI variables → run().
import { writeFile } from 'node:fs/promises';
import { gitLabNotifier } from './gitlab.js';
import { run } from './run.js';
import { toJUnit } from '../../src/policy/cli-api.js';

const env = process.env;
const token = env.CT_POLICY_GITLAB_TOKEN ?? '';
const iid = env.CI_MERGE_REQUEST_IID ? Number(env.CI_MERGE_REQUEST_IID) : undefined;
const result = await run({
  policies: env.CT_POLICY_DIR || '.',
  repoDir: env.CI_PROJECT_DIR || '.',
  baseRef: env.CT_POLICY_BASE_REF || env.CI_MERGE_REQUEST_DIFF_BASE_SHA || undefined,
  deployments: env.CT_POLICY_DEPLOYMENTS || undefined,
  requireTests: env.CT_POLICY_REQUIRE_TESTS === 'true',
  failOnDeny: env.CT_POLICY_FAIL_ON_DENY === 'true',
  detailsUrl: env.CI_JOB_URL,
  notifier: token ? gitLabNotifier({ token, host: env.CI_SERVER_URL ?? 'https://gitlab.com', projectId: env.CI_PROJECT_ID ?? '', sha: env.CI_COMMIT_SHA ?? '', mergeRequestIid: iid }) : undefined,
});
await writeFile('policy-report.md', result.markdown);
await writeFile('policy-junit.xml', toJUnit(result.tests));
process.stdout.write(result.markdown);
process.exitCode = result.ok ? 0 : 1;
