/**
 * The CI YAML files of the repository, found (not listed) so that a new action, workflow, pipeline
 * or component is checked as soon as it exists: tracked and untracked files, node_modules and
 * build output excluded.
 */
import { execFileSync } from 'node:child_process';
import { basename } from 'node:path';
import { REPO } from './runner.js';

function repoFiles(): string[] {
  const out = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: REPO, encoding: 'utf8' });
  return out.split('\0').filter((f) => f && !/(^|\/)(node_modules|build|dist)\//.test(f));
}

const YAML = /\.ya?ml$/;

export interface CiFiles {
  /** action.yml / action.yaml (GitHub actions). */
  actions: string[];
  /** GitHub workflows: any `.github/workflows/`, the starter workflows, the GitHub examples. */
  workflows: string[];
  /** GitLab pipelines (`.gitlab-ci.yml` anywhere). */
  pipelines: string[];
  /** Every file under templates/ (GitLab components only, by the catalog's rule). */
  templates: string[];
}

export function ciFiles(): CiFiles {
  const files = repoFiles();
  return {
    actions: files.filter((f) => /^action\.ya?ml$/.test(basename(f))),
    workflows: files.filter((f) => YAML.test(f) && (/(^|\/)\.github\/workflows\/[^/]+$/.test(f) || /^workflow-templates\/[^/]+$/.test(f) || /^examples\/github\/[^/]+$/.test(f))),
    pipelines: files.filter((f) => basename(f) === '.gitlab-ci.yml'),
    templates: files.filter((f) => f.startsWith('templates/')),
  };
}

/** The component name of a file under templates/ laid out as GitLab resolves it, else undefined. */
export function componentNameOf(file: string): string | undefined {
  return (/^templates\/([^/]+)\.yml$/.exec(file) ?? /^templates\/([^/]+)\/template\.yml$/.exec(file))?.[1];
}
