/**
 * The shape of one CLI command: a thin file in src/cli/commands/ that declares its options and
 * calls the library. Commands are registered from the one list in src/cli/commands/index.ts.
 */
import type { Command } from 'commander';

export interface CliCommand {
  /** The command word (e.g. "info"; "hub" for a command with subcommands). */
  name: string;
  /** Adds the command (with its options, help and action) to the program. */
  register(program: Command): void;
}

/** Help text listing examples: [command line, what it does]. */
export function examples(list: readonly (readonly [string, string])[]): string {
  const lines = ['', 'Examples:'];
  for (const [cmd, what] of list) lines.push(`  $ ${cmd}`, `      ${what}`);
  return `${lines.join('\n')}\n`;
}
