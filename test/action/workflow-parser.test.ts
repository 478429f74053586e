/**
 * GitHub YAML as GitHub loads it: every action.yml and every workflow of the repository (found,
 * not listed: ci-files.ts) goes through GitHub's own parser, @actions/workflow-parser, with zero
 * errors; an invalid file is reported with the parser's message.
 */
import { describe, it, expect } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NoOperationTraceWriter, parseWorkflow } from '@actions/workflow-parser';
import { parseAction } from '@actions/workflow-parser/actions/index';
import { REPO } from './runner.js';
import { ciFiles } from './ci-files.js';

type Parser = typeof parseWorkflow;
function parseErrors(parse: Parser, name: string, content: string): string[] {
  const r = parse({ name, content }, new NoOperationTraceWriter());
  return r.context.errors.getErrors().map((e) => e.message);
}
const files = ciFiles();

describe('@actions/workflow-parser accepts every GitHub YAML file', () => {
  it('finds the actions and workflows, the policy-repository starter included', () => {
    expect(files.actions).toEqual(expect.arrayContaining(['action.yml', 'actions/verify/action.yml', 'actions/deploy/action.yml', 'actions/policy-check/action.yml']));
    expect(files.workflows).toEqual(expect.arrayContaining(['examples/policy-repo/.github/workflows/policy-check.yml', 'workflow-templates/build-and-sign.yml', 'examples/github/release.yml']));
  });

  it.each(files.actions)('action %s parses with zero errors', (file) => {
    expect(parseErrors(parseAction, file, readFileSync(join(REPO, file), 'utf8'))).toEqual([]);
  });

  it.each(files.workflows)('workflow %s parses with zero errors', (file) => {
    expect(parseErrors(parseWorkflow, file, readFileSync(join(REPO, file), 'utf8'))).toEqual([]);
  });

  it('the parser rejects what GitHub rejects: an unquoted ": " in a run line, an unknown key, a bad action', () => {
    const wf = (run: string) => `on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n    steps:\n      - run: ${run}\n`;
    expect(parseErrors(parseWorkflow, 'ok.yml', wf("'echo \"a: b\"'"))).toEqual([]);
    expect(parseErrors(parseWorkflow, 'bad.yml', wf('curl -H "Authorization: Bearer x" https://e.example')).length).toBeGreaterThan(0);
    expect(parseErrors(parseWorkflow, 'bad.yml', wf('true').replace('runs-on', 'runs_on')).length).toBeGreaterThan(0);
    expect(parseErrors(parseAction, 'action.yml', "name: x\ndescription: y\nruns:\n  using: node99\n  main: i.js\n").length).toBeGreaterThan(0);
  });
});
