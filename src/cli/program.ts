import { Command } from 'commander';
import { commands } from './commands/index.js';

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
  return { name: shown, message: `unknown command ${JSON.stringify(shown)}; ct has: ${known.join(', ')} (ct --help)` };
}

/**
 * Builds the command tree. With a known command name in `argv`, only that command's module is
 * loaded; otherwise (help, unknown names) every command is, so help lists them all.
 */
export async function buildProgram(argv: string[] = process.argv): Promise<Command> {
  const program = new Command('ct')
    .description('Cerro Torre: build, sign, verify and run provable containers')
    .version('0.1.0')
    .showHelpAfterError();
  const first = commandName(argv);
  // `ct --version` needs no command (scripts and benchmarks call it to time start-up).
  if (first === undefined && argv.slice(2).some((a) => a === '-V' || a === '--version')) return program;
  const wanted = commands.filter((c) => first !== undefined && c.names.includes(first));
  for (const c of wanted.length ? wanted : commands) (await c.load()).register(program);
  return program;
}
