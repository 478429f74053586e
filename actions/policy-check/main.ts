// GitHub Actions entry of the policy check: read the inputs, call run(). Only file importing @actions/core.
import * as core from '@actions/core';
import { gitHubNotifier } from './github.js';
import { STATUS_CONTEXT } from './notifier.js';
import { run } from './run.js';

async function main(): Promise<void> {
  const [owner, repo] = (process.env.GITHUB_REPOSITORY ?? '/').split('/');
  const event = process.env.GITHUB_EVENT_PATH ? JSON.parse(await (await import('node:fs/promises')).readFile(process.env.GITHUB_EVENT_PATH, 'utf8')) : {};
  const pr: number | undefined = event.pull_request?.number;
  const sha: string = event.pull_request?.head?.sha ?? process.env.GITHUB_SHA ?? '';
  const token = core.getInput('token');
  // A fork's pull request runs with a read-only token: its status is refused (403), a warning then.
  const headRepo: unknown = event.pull_request?.head?.repo?.full_name;
  const baseRepo: unknown = event.pull_request?.base?.repo?.full_name;
  const fork = typeof headRepo === 'string' && typeof baseRepo === 'string' && headRepo.toLowerCase() !== baseRepo.toLowerCase();
  const result = await run({
    policies: core.getInput('policies') || '.',
    repoDir: core.getInput('repo-dir') || '.',
    baseRef: core.getInput('base-ref') || (event.pull_request?.base?.sha as string | undefined),
    deployments: core.getInput('deployments') || undefined,
    requireTests: core.getInput('require-tests') === 'true',
    failOnDeny: core.getInput('fail-on-deny') === 'true',
    detailsUrl: `${process.env.GITHUB_SERVER_URL}/${process.env.GITHUB_REPOSITORY}/actions/runs/${process.env.GITHUB_RUN_ID}`,
    fork,
    notifier: token ? gitHubNotifier({ token, baseUrl: process.env.GITHUB_API_URL ?? 'https://api.github.com', owner, repo, sha, pr, commentAuthor: core.getInput('comment-author') || undefined }) : undefined,
  });
  const status = result.statusError;
  const statusText = status ? `the ${STATUS_CONTEXT} commit status was not posted: ${status.code}: ${status.message}` : '';
  if (status?.fork) core.warning(`${statusText} (a pull request from a fork: its token is read-only); this job's outcome is the check`);
  if (result.commentError) core.warning(`the pull-request comment was not written${result.statusError ? '' : ` (the ${STATUS_CONTEXT} status was)`}: ${result.commentError.code}: ${result.commentError.message}`);
  await core.summary.addRaw(result.markdown).write();
  core.setOutput('result', result.state);
  // The report is written first; then a status that could not be posted for any other reason fails the job.
  if (status && !status.fork) core.setFailed(`${statusText}${result.state === 'success' ? '' : `; the check failed too: ${result.description}`}`);
  else if (!result.ok) core.setFailed(result.description);
}

main().catch((e: unknown) => core.setFailed(e instanceof Error ? e.message : String(e)));
