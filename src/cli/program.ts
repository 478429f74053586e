import { Command } from 'commander';
import { commands } from './commands/index.js';
import { terminalText } from '../core/terminal.js';

/** The first word of `argv` that is not an option: the command name, if any. */
function commandName(argv: string[]): string | undefined {
  return argv.slice(2).find((a) => !a.startsWith('-'));
}

/**
 * A command name `ct` does not have. Commander would print the root help and exit 0 for
 * `ct nosuch --help`, which hides a typo (or an older `ct`) from scripts: such names are refused
 * before parsing (UNKNOWN_COMMAND).
 */
export function unknownCommand(argv: string[]): { name: string; message: string } | undefined {
  const name = commandName(argv);
  if (name === undefined || name === 'help' || commands.some((c) => c.names.includes(name))) return undefined;
  const known = commands.flatMap((c) => c.names).sort();
  const shown = name.length > 64 ? `${name.slice(0, 64)}…` : name;
  const near = known.filter((k) => editDistance(k, name, 2) <= 2).sort((a, b) => editDistance(a, name, 2) - editDistance(b, name, 2));
  const hint = near.length ? ` Did you mean ${near.slice(0, 2).join(' or ')}?` : '';
  return { name: shown, message: `unknown command ${JSON.stringify(shown)}.${hint} ct has: ${known.join(', ')} (ct --help)` };
}

/**
 * Levenshtein distance, given up past `max` (a typo of a command name: `verfy`). Hand-written:
 * commander's own suggestions never run, since unknown names are refused before parsing.
 */
function editDistance(a: string, b: string, max: number): number {
  if (Math.abs(a.length - b.length) > max || b.length > 64) return max + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length];
}

/**
 * Builds the command tree. With a known command name in `argv`, only that command's module is
 * loaded; otherwise (help, unknown names) every command is, so help lists them all.
 */
export async function buildProgram(argv: string[] = process.argv): Promise<Command> {
  const program = new Command('ct')
    .description('Cerro Torre: build, sign, verify and run provable containers')
    .version('0.1.0')
    // Parser errors (a missing required option, an unknown flag) as every other error: a code and
    // one line, then where the options are, not the whole help (settings the commands inherit).
    .configureOutput({ outputError: (text, write) => write(terminalText(text.replace(/^error: /, 'error[USAGE]: '))) })
    .showHelpAfterError('(add --help to see the options)');
  const first = commandName(argv);
  // `ct --version` needs no command (scripts and benchmarks call it to time start-up).
  if (first === undefined && argv.slice(2).some((a) => a === '-V' || a === '--version')) return program;
  const wanted = commands.filter((c) => first !== undefined && c.names.includes(first));
  for (const c of wanted.length ? wanted : commands) (await c.load()).register(program);
  return program;
}
