/**
 * Runs a bundled action (`node dist/…/index.js`) in a child process the way a GitHub runner does:
 * a clean environment with INPUT_* (action.yml defaults filled in, as the runner fills them),
 * GITHUB_* context, RUNNER_TEMP, and GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files, which are parsed
 * afterwards. Workflow commands on stdout (`::error::`, `::add-mask::`) are parsed too.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';

/** The repository root, also when this file runs transpiled from build/test/action/ (the bench). */
function repoRoot(): string {
  const up = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
  return existsSync(join(up, 'action.yml')) ? up : dirname(up);
}
export const REPO = repoRoot();

export interface ActionRun {
  code: number | null;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  summary: string;
  annotations: { level: string; message: string }[];
  /** Values the action asked the runner to mask. */
  masked: string[];
  /** stdout as the runner shows it: `::add-mask::` commands are consumed, never displayed. */
  visible: string;
  durationMs: number;
}

export interface RunOptions {
  /** action.yml of the action (repository-relative). */
  actionYml: string;
  inputs: Record<string, string>;
  env?: Record<string, string>;
  /** The token `${{ github.token }}` defaults expand to. */
  githubToken?: string;
  timeoutMs?: number;
}

interface ActionYml { inputs?: Record<string, { default?: string; required?: boolean }>; runs: { using: string; main: string } }

export function readActionYml(rel: string): ActionYml {
  return parseYaml(readFileSync(join(REPO, rel), 'utf8')) as ActionYml;
}

/** Input env names exactly as the runner and @actions/core spell them. */
export function inputEnvName(name: string): string {
  return `INPUT_${name.replace(/ /g, '_').toUpperCase()}`;
}

export function parseOutputFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^([^=<]+)<<(.+)$/.exec(lines[i]);
    if (m) {
      const end = lines.indexOf(m[2], i + 1);
      if (end < 0) throw new Error(`unterminated output ${m[1]}`);
      out[m[1]] = lines.slice(i + 1, end).join('\n');
      i = end;
    } else if (lines[i].includes('=')) {
      const k = lines[i].slice(0, lines[i].indexOf('='));
      out[k] = lines[i].slice(k.length + 1);
    }
  }
  return out;
}

export async function runAction(o: RunOptions): Promise<ActionRun> {
  const yml = readActionYml(o.actionYml);
  const main = join(REPO, o.actionYml, '..', yml.runs.main);
  const dir = await mkdtemp(join(tmpdir(), 'ct-runner-'));
  try {
    const outputFile = join(dir, 'output');
    const summaryFile = join(dir, 'summary');
    await writeFile(outputFile, '');
    await writeFile(summaryFile, '');
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: dir,
      CI: 'true',
      GITHUB_ACTIONS: 'true',
      RUNNER_TEMP: join(dir, 'temp'),
      GITHUB_OUTPUT: outputFile,
      GITHUB_STEP_SUMMARY: summaryFile,
      GITHUB_WORKSPACE: REPO,
      ...o.env,
    };
    for (const [name, spec] of Object.entries(yml.inputs ?? {})) {
      if (o.inputs[name] !== undefined) continue;
      const d = spec.default;
      if (d === undefined) continue;
      env[inputEnvName(name)] = String(d).replace(/\$\{\{\s*github\.token\s*\}\}/g, o.githubToken ?? '').replace(/\$\{\{[^}]*\}\}/g, '');
    }
    for (const [name, v] of Object.entries(o.inputs)) env[inputEnvName(name)] = v;
    const t0 = Date.now();
    const child = spawn(process.execPath, [main], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 60_000);
    const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    clearTimeout(timer);
    const durationMs = Date.now() - t0;
    const lines = stdout.split(/\r?\n/);
    const annotations = lines.flatMap((l) => {
      const m = /^::(error|warning|notice)(?: [^:]*)?::(.*)$/.exec(l);
      return m ? [{ level: m[1], message: m[2] }] : [];
    });
    const masked = lines.flatMap((l) => (l.startsWith('::add-mask::') ? [l.slice('::add-mask::'.length)] : []));
    return {
      code,
      stdout,
      stderr,
      outputs: parseOutputFile(await readFile(outputFile, 'utf8')),
      summary: await readFile(summaryFile, 'utf8'),
      annotations,
      masked,
      visible: lines.filter((l) => !l.startsWith('::add-mask::')).join('\n'),
      durationMs,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
