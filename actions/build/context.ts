/**
 * The GitHub Actions run an action executes in, from the runner's `GITHUB_*` variables: where the
 * commit status points (the run's page) and which repository and commit it is posted to.
 */
export interface RunnerContext {
  /** `owner/name`. */
  repository?: string;
  sha?: string;
  serverUrl: string;
  apiUrl: string;
  runId?: string;
  runAttempt?: string;
  workflow?: string;
  ref?: string;
  eventName?: string;
  runnerTemp?: string;
}

export function runnerContext(env: NodeJS.ProcessEnv = process.env): RunnerContext {
  return {
    repository: env.GITHUB_REPOSITORY || undefined,
    sha: env.GITHUB_SHA || undefined,
    serverUrl: env.GITHUB_SERVER_URL || 'https://github.com',
    apiUrl: env.GITHUB_API_URL || 'https://api.github.com',
    runId: env.GITHUB_RUN_ID || undefined,
    runAttempt: env.GITHUB_RUN_ATTEMPT || undefined,
    workflow: env.GITHUB_WORKFLOW || undefined,
    ref: env.GITHUB_REF || undefined,
    eventName: env.GITHUB_EVENT_NAME || undefined,
    runnerTemp: env.RUNNER_TEMP || undefined,
  };
}

/** The run's page (what a commit status links to), when the runner told us enough to build it. */
export function runUrl(ctx: RunnerContext): string | undefined {
  if (!ctx.repository || !ctx.runId) return undefined;
  const base = `${ctx.serverUrl.replace(/\/+$/, '')}/${ctx.repository}/actions/runs/${ctx.runId}`;
  return ctx.runAttempt && ctx.runAttempt !== '1' ? `${base}/attempts/${ctx.runAttempt}` : base;
}
