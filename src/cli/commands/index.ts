/**
 * The one list of CLI commands, in the order `--help` shows them. A new command is one file in
 * this folder exporting a CliCommand, added here.
 */
import type { CliCommand } from '../command.js';
import { evalCommand } from './eval.js';
import { generateCommand } from './generate.js';
import { infoCommand } from './info.js';
import { reportCommand } from './report.js';
import { sweepCommand } from './sweep.js';

export const COMMANDS: readonly CliCommand[] = [
  infoCommand,
  evalCommand,
  generateCommand,
  sweepCommand,
  reportCommand,
];
