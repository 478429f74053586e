// GitLab CI entry of the policy check (templates/policy-check.yml): CI variables → run().
import { writeJobFileSync } from '../../src/core/fs.js';
import { describeError } from '../build/errors.js';
import { gitLabNotifier } from './gitlab.js';
import { STATUS_CONTEXT } from './notifier.js';
import { run } from './run.js';
import { toJUnit } from '../../src/policy/cli-api.js';

async function main(env: NodeJS.ProcessEnv): Promise<void> {
  const token = env.CT_POLICY_GITLAB_TOKEN ?? '';
  const iid = env.CI_MERGE_REQUEST_IID ? Number(env.CI_MERGE_REQUEST_IID) : undefined;
  const result = await run({
    policies: env.CT_POLICY_DIR || '.',
    repoDir: env.CI_PROJECT_DIR || '.',
    // A merged-results pipeline checks out the merge with the target's head: compare with that head
    // (CI_MERGE_REQUEST_TARGET_BRANCH_SHA, set only there), not with the older merge base.
    baseRef: env.CT_POLICY_BASE_REF || env.CI_MERGE_REQUEST_TARGET_BRANCH_SHA || env.CI_MERGE_REQUEST_DIFF_BASE_SHA || undefined,
    deployments: env.CT_POLICY_DEPLOYMENTS || undefined,
    requireTests: env.CT_POLICY_REQUIRE_TESTS === 'true',
    failOnDeny: env.CT_POLICY_FAIL_ON_DENY === 'true',
    detailsUrl: env.CI_JOB_URL,
    notifier: token ? gitLabNotifier({ token, host: env.CI_SERVER_URL ?? 'https://gitlab.com', projectId: env.CI_PROJECT_ID ?? '', sha: env.CI_COMMIT_SHA ?? '', mergeRequestIid: iid }) : undefined,
  });
  // Reported after the report is written (below), and the job fails on it: see run().
  const statusFailure = result.statusError ? `ERROR: the ${STATUS_CONTEXT} commit status was not posted: ${result.statusError.code}: ${result.statusError.message}` : undefined;
  if (result.commentError) console.error(`WARNING: the merge-request note was not written${result.statusError ? '' : ` (the ${STATUS_CONTEXT} status was)`}: ${result.commentError.code}: ${result.commentError.message}`);
  process.stdout.write(result.markdown);
  // The job's artifacts (report, JUnit) in the project directory, never through a committed link.
  writeJobFileSync('policy-report.md', result.markdown);
  writeJobFileSync('policy-junit.xml', toJUnit(result.tests));
  if (statusFailure) console.error(statusFailure);
  process.exitCode = result.ok ? 0 : 1;
}

await main(process.env).catch((e: unknown) => {
  const d = describeError(e);
  console.error(`ERROR: ${d.code}: ${d.message}`);
  process.exitCode = 1;
});
