import { Command } from 'commander';
import { commands } from './commands/index.js';

export function buildProgram(): Command {
  const program = new Command('ct')
    .description('Cerro Torre: build, sign, verify and run provable containers')
    .version('0.1.0')
    .showHelpAfterError();
  for (const register of commands) register(program);
  return program;
}
