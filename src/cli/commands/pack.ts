import type { Command } from 'commander';

// Registered by the issue that delivers this command.
export function register(_program: Command): void {}
