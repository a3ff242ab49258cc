/**
 * The one list of CLI commands, in the order `--help` shows them. A new command is one file in
 * this folder exporting a CliCommand, added here.
 */
import type { CliCommand } from '../command.js';
import { convertCommand } from './convert.js';
import { demoCommand } from './demo.js';
import { evalCommand } from './eval.js';
import { exportJobCommand } from './export-job.js';
import { generateCommand } from './generate.js';
import { hubCommand } from './hub.js';
import { importJobCommand } from './import-job.js';
import { infoCommand } from './info.js';
import { pretrainCommand } from './pretrain.js';
import { reportCommand } from './report.js';
import { surgeryCommand } from './surgery.js';
import { sweepCommand } from './sweep.js';
import { trainCommand } from './train.js';

export const COMMANDS: readonly CliCommand[] = [
  infoCommand,
  evalCommand,
  surgeryCommand,
  convertCommand,
  trainCommand,
  pretrainCommand,
  exportJobCommand,
  importJobCommand,
  generateCommand,
  sweepCommand,
  reportCommand,
  hubCommand,
  demoCommand,
];
