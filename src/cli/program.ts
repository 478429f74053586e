import { Command } from 'commander';
import { commands } from './commands/index.js';

/**
 * Builds the command tree. With a known command name in `argv`, only that command's module is
 * loaded; otherwise (help, unknown names) every command is, so help lists them all.
 */
export async function buildProgram(argv: string[] = process.argv): Promise<Command> {
  const program = new Command('ct')
    .description('Cerro Torre: build, sign, verify and run provable containers')
    .version('0.1.0')
    .showHelpAfterError();
  const first = argv.slice(2).find((a) => !a.startsWith('-'));
  const wanted = commands.filter((c) => first !== undefined && c.names.includes(first));
  for (const c of wanted.length ? wanted : commands) (await c.load()).register(program);
  return program;
}
