import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CODES } from '../src/core/codes.js';
import { VIOLATION_CODES } from '../src/policy/codes.js';
import { repoRoot } from './support/cli.js';

describe('docs/error-codes.md', () => {
  it('documents every code with the exit code it maps to', () => {
    const doc = readFileSync(join(repoRoot, 'docs', 'error-codes.md'), 'utf8');
    const missing = Object.entries(CODES).filter(([code, exit]) => !new RegExp(`\\| \`${code}\` \\| ${exit} \\|`).test(doc)).map(([c]) => c);
    expect(missing).toEqual([]);
  });

  it('documents every policy violation code in its table', () => {
    const doc = readFileSync(join(repoRoot, 'docs', 'error-codes.md'), 'utf8');
    const policy = doc.slice(doc.indexOf('## Policy codes'));
    const missing = Object.keys(VIOLATION_CODES).filter((code) => !policy.includes(`| \`${code}\` |`));
    expect(missing).toEqual([]);
  });

  it('documents the MCP refusals as agents get them: a JSON {code, message} answer, the codes refused before any tool runs, and /mcp\'s own', () => {
    const doc = readFileSync(join(repoRoot, 'docs', 'error-codes.md'), 'utf8');
    const mcp = doc.slice(doc.indexOf('## MCP tool codes'), doc.indexOf('\n## ', doc.indexOf('## MCP tool codes') + 1));
    const missing = ['UNKNOWN_TOOL', 'INVALID_ARGUMENTS', 'RESPONSE_TOO_LARGE', 'INTERNAL'].filter((code) => !mcp.includes(`| \`${code}\` |`));
    expect(missing).toEqual([]);
    expect(mcp).toContain('FORBIDDEN_ORIGIN');
    expect(mcp).toContain('{"code": "CODE", "message": {"untrusted": true');
    expect(mcp).not.toContain('`CODE: message`');
  });
});

/**
 * What a reader of the README and docs/ follows: every page is reachable from the README, every
 * relative link and anchor leads somewhere, and every `ct` command line in code (fenced blocks and
 * inline code) names a command, subcommand and options that `ct` has (commander's own tree, from
 * the built CLI as `ct` runs it), so a renamed flag cannot leave its old name in the docs.
 */
const docFiles = () => ['README.md', ...readdirSync(join(repoRoot, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const read = (f: string) => readFileSync(join(repoRoot, f), 'utf8');

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes, repeats numbered. */
function anchorsOf(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of text.replace(/```[\s\S]*?```/g, '').matchAll(/^#{1,6} (.*)$/gm)) {
    const base = m[1].replace(/`/g, '').trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n ? `${base}-${n}` : base);
  }
  return out;
}

type CtNode = { opts: string[]; subs: string[] };
function ctTree(): Record<string, CtNode> {
  const script = `import { buildProgram } from ${JSON.stringify(pathToFileURL(join(repoRoot, 'build', 'src', 'cli', 'program.js')).href)};
const out = {};
const walk = (c, path) => { out[path.join(' ')] = { opts: c.options.flatMap((o) => [o.short, o.long].filter(Boolean)), subs: c.commands.map((s) => s.name()) }; for (const s of c.commands) walk(s, [...path, s.name()]); };
walk(await buildProgram(['node', 'ct']), []);
process.stdout.write(JSON.stringify(out));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`could not list ct's commands: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, CtNode>;
}

/** `ct …` command lines in code: fenced blocks (continuations joined) and inline code spans. */
function ctLines(text: string): string[] {
  const lines: string[] = [];
  for (const block of text.matchAll(/```[a-z]*\n([\s\S]*?)```/g)) {
    for (const m of block[1].replace(/\\\n\s*/g, ' ').matchAll(/(?:^|[\s;&|($`])ct +([^\n#;&|)`>]+)/gm)) lines.push(m[1]);
  }
  for (const m of text.replace(/```[\s\S]*?```/g, '').matchAll(/`(?:sudo )?(?:node bin\/ct\.js|ct) +([^`]+)`/g)) lines.push(m[1]);
  return lines;
}

/** What is wrong with one `ct` line: an unknown command or subcommand, an option it does not have. */
function ctLineProblems(tree: Record<string, CtNode>, line: string): string[] {
  const words = line.trim().split(/\s+/);
  // Placeholders (`ct …`, `ct <command>`) name no command.
  if (!/^[a-z][\w-]*$/.test(words[0])) return [];
  const path: string[] = [];
  while (path.length < words.length && tree[[...path, words[path.length]].join(' ')]) path.push(words[path.length]);
  if (path.length === 0) return [`ct ${words[0]}: no such command`];
  const node = tree[path.join(' ')];
  const next = words[path.length];
  if (node.subs.length && next !== undefined && /^[a-z][\w-]*$/.test(next) && next !== 'help') return [`ct ${path.join(' ')} ${next}: no such subcommand (${node.subs.join(', ')})`];
  // After a bare `--` the words are arguments (a command a host runs, say), not ct's options.
  const rest = words.slice(path.length);
  const end = rest.indexOf('--');
  return (end === -1 ? rest : rest.slice(0, end))
    .map((w) => /^(--?[a-zA-Z][\w-]*)/.exec(w)?.[1])
    .filter((f): f is string => f !== undefined && f !== '--help' && f !== '-h' && !node.opts.includes(f))
    .map((f) => `ct ${path.join(' ')}: no option ${f}`);
}

describe('README and docs/', () => {
  it('the README links every page of docs/', () => {
    const readme = read('README.md');
    expect(docFiles().filter((f) => f !== 'README.md' && !readme.includes(`](${f})`))).toEqual([]);
  });

  it('every relative link leads to a file, and every anchor to a heading of it', () => {
    const broken: string[] = [];
    for (const f of docFiles()) {
      for (const m of read(f).replace(/```[\s\S]*?```/g, '').matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(m[1])) continue;
        const [file, anchor] = m[1].split('#');
        const target = file ? join(dirname(f), file) : f;
        if (!existsSync(join(repoRoot, target))) broken.push(`${f}: ${m[1]} (no such file)`);
        else if (anchor && target.endsWith('.md') && !anchorsOf(read(target)).has(anchor)) broken.push(`${f}: ${m[1]} (no such heading)`);
      }
    }
    expect(broken).toEqual([]);
    expect([...anchorsOf('# Bundles in OCI registries (`ct push`)\n## Tests\n```\n# not a heading\n```\n## Tests\n')]).toEqual(['bundles-in-oci-registries-ct-push', 'tests', 'tests-1']);
  });

  it('every ct command line in their code names a command, subcommand and options ct has', () => {
    const tree = ctTree();
    expect(tree['verify'].opts).toContain('--log-quorum');
    const problems = docFiles().flatMap((f) => ctLines(read(f)).flatMap((l) => ctLineProblems(tree, l).map((p) => `${f}: ${p}   [ct ${l.trim().slice(0, 80)}]`)));
    expect(problems).toEqual([]);
    expect(docFiles().flatMap((f) => ctLines(read(f))).length).toBeGreaterThan(100);
    // The check itself finds each kind of mistake.
    expect(ctLineProblems(tree, 'verfy x.ctp')).toEqual(['ct verfy: no such command']);
    expect(ctLineProblems(tree, 'trust-store add-keys t.json')).toEqual([expect.stringContaining('no such subcommand')]);
    expect(ctLineProblems(tree, 'verify x.ctp --quorum 2')).toEqual(['ct verify: no option --quorum']);
    expect(ctLineProblems(tree, 'verify x.ctp --quorum 2 -- ls --all')).toEqual(['ct verify: no option --quorum']);
    expect(ctLines('run `ct verify a.ctp --quorum=2` or\n```sh\nct host \\\n  ps --jsn\n```\n').flatMap((l) => ctLineProblems(tree, l))).toEqual(['ct host ps: no option --jsn', 'ct verify: no option --quorum']);
  });
});
