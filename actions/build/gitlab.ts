/**
 * The GitLab CI entry of the same actions (templates/*.yml run `ct-gitlab build|verify|deploy`,
 * bin/ct-gitlab.js → gitlab-main.ts; `node dist/gitlab/index.js` is the same bundled). Inputs come from `CT_<INPUT>` variables (GitLab variable names cannot
 * hold dashes: `log-quorum` → CT_LOG_QUORUM), OIDC tokens from the job's `id_tokens`
 * (SIGSTORE_ID_TOKEN for aud sigstore, CT_DEPLOY_ID_TOKEN for the deploy server), outputs go to a
 * dotenv report, the summary to a Markdown file, and commit statuses to GitLab through Gitbeaker
 * when CT_GITLAB_TOKEN is given.
 */
import { lstatSync } from 'node:fs';
import { resolve } from 'node:path';
import { CtError } from '../../src/core/errors.js';
import { writeJobFileSync } from '../../src/core/fs.js';
import type { ActionIo, InputReader } from './io.js';
import { readBuildInputs } from './inputs.js';
import { run as runBuild } from './run.js';
import { readVerifyInputs } from '../verify/inputs.js';
import { run as runVerify } from '../verify/run.js';
import { readDeployInputs } from '../deploy/inputs.js';
import { run as runDeploy } from '../deploy/run.js';
import { readPromoteInputs } from '../promote/inputs.js';
import { run as runPromote } from '../promote/run.js';
import { gitlabReporterFromEnv } from './gitlab-status.js';
import { describeError } from './errors.js';

export function gitlabInputs(env: NodeJS.ProcessEnv): InputReader {
  return (name) => (env[`CT_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`] ?? '').trim();
}

/** id_tokens variables by audience: sigstore → SIGSTORE_ID_TOKEN, anything else → CT_DEPLOY_ID_TOKEN. */
export function gitlabIo(env: NodeJS.ProcessEnv): ActionIo {
  const outputs = env.CT_OUTPUT_ENV ?? 'ct-outputs.env';
  const summary = env.CT_SUMMARY_FILE ?? 'ct-summary.md';
  // Each command's dotenv report and summary start afresh: a file committed under that name (the
  // project directory is the change under test) must not carry its variables into the report that
  // later jobs read. The command's later writes append.
  const written = new Set<string>();
  const write = (path: string, text: string) => {
    writeJobFileSync(path, text, { append: written.has(path) });
    written.add(path);
  };
  const secrets: string[] = [];
  const clean = (m: string) => secrets.reduce((t, s) => t.split(s).join('[MASKED]'), m);
  return {
    setSecret: (v) => void (v && v.length >= 4 && secrets.push(v)),
    setOutput: (n, v) => {
      // dotenv reports hold one line per variable: JSON values are single-line already.
      const line = `CT_${n.toUpperCase().replace(/[^A-Z0-9]/g, '_')}=${clean(v).replace(/\n/g, ' ')}\n`;
      write(outputs, line);
    },
    info: (m) => console.log(clean(m)),
    warning: (m) => console.log(`WARNING: ${clean(m)}`),
    setFailed: (m) => {
      console.error(`ERROR: ${clean(m)}`);
      process.exitCode = 1;
    },
    summary: async (md) => {
      write(summary, clean(md));
    },
    idToken: async (aud) => {
      const name = aud === 'sigstore' ? 'SIGSTORE_ID_TOKEN' : 'CT_DEPLOY_ID_TOKEN';
      const t = env[name];
      if (!t) throw new Error(`${name} is not set: add id_tokens: ${name}: aud: ${aud} to the job`);
      return t;
    },
  };
}

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const io = gitlabIo(env);
  const get = gitlabInputs(env);
  const reporter = gitlabReporterFromEnv(env, env.CT_GITLAB_TOKEN);
  if (env.CT_GITLAB_TOKEN) io.setSecret(env.CT_GITLAB_TOKEN);
  // GitHub-only inputs stay empty on GitLab: no GitHub status, output dir under the project.
  // Resolved once, and that very path checked and used (a trailing slash would make lstat follow a link).
  const outDir = resolve((env.CT_OUTPUT_DIR ?? `${env.CI_PROJECT_DIR ?? '.'}/ct-out`).trim());
  const env2 = { ...env, RUNNER_TEMP: outDir };
  try {
    // The output directory sits in the checkout of the change under test (see writeJobFileSync);
    // what is written inside it goes by unguessable names or by rename (run.ts).
    if (argv[0] !== 'promote' && lstatSync(outDir, { throwIfNoEntry: false })?.isSymbolicLink()) {
      throw new CtError('IO_ERROR', `refusing to write into ${outDir}: it is a symbolic link (committed to the repository?); set CT_OUTPUT_DIR to another directory`, { path: outDir });
    }
    switch (argv[0]) {
      case 'build':
        await runBuild({ ...readBuildInputs(get, env2), githubToken: undefined }, io, reporter);
        break;
      case 'verify':
        await runVerify({ ...readVerifyInputs(get, env2), githubToken: undefined }, io, reporter);
        break;
      case 'deploy':
        await runDeploy({ ...readDeployInputs(get, env2), githubToken: undefined }, io, reporter);
        break;
      case 'promote':
        await runPromote(readPromoteInputs(get), io);
        break;
      default:
        io.setFailed(`USAGE: node dist/gitlab/index.js build|verify|deploy|promote (got ${argv[0] ?? 'nothing'})`);
    }
  } catch (e) {
    const d = describeError(e);
    io.setFailed(`${d.code}: ${d.message}`);
  }
}

