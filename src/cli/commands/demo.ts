/**
 * `moe-tune demo [--out DIR] [--quick]`: the whole pipeline on the embedded Brown corpus in a
 * minute or two (see src/cli/demo-pipeline.ts): pretrain a small MoE, null-expert surgery,
 * 4-bit fine-tune with LoRA, evaluation, a router sweep, and the HTML report.
 */
import { DEMO_QUICK_TIMING, DEMO_TIMING } from '../timings.js';
import type { Command } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createProgress } from '../../train/progress.js';
import { examples, type CliCommand } from '../command.js';
import { runDemo } from '../demo-pipeline.js';
import { note, printJson } from '../output.js';
import { requireFreshOut } from '../run-dir.js';
import { stopHandlers } from '../stop-on-signal.js';

interface DemoCliOptions {
  out?: string;
  quick?: boolean;
  force?: boolean;
  json?: boolean;
}

function stamp(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

async function demoAction(o: DemoCliOptions): Promise<void> {
  const out = o.out ?? path.join('runs', `demo-${stamp(new Date())}`);
  requireFreshOut(out, o.force);
  if (o.force) fs.rmSync(out, { recursive: true, force: true });
  const created = !fs.existsSync(out);
  const stops = stopHandlers();
  const log = o.json ? note : (line: string): void => { process.stdout.write(`${line}\n`); };
  let res;
  try {
    res = await runDemo({ out, quick: o.quick === true, onTrainer: (t) => stops.onTrainer(t), log, progress: createProgress({ stream: o.json ? process.stderr : process.stdout }) });
  } catch (err) {
    if (created) fs.rmSync(out, { recursive: true, force: true });
    throw err;
  } finally {
    stops.dispose();
  }
  if (o.json) {
    printJson(res);
    return;
  }
  process.stdout.write(`\ndone in ${res.seconds.toFixed(1)} s (${res.stages.map((s) => `${s.name} ${s.seconds.toFixed(1)} s`).join(', ')}; backend ${res.backend})\n`);
  process.stdout.write(`report: ${res.report}\n`);
}

export const demoCommand: CliCommand = {
  name: 'demo',
  register(program: Command) {
    program.command('demo')
      .description(`the whole pipeline, ${DEMO_TIMING}, no download: pretrain a small MoE on the built-in Brown corpus, AdaMoE null-expert surgery, 4-bit (NF4) fine-tune with LoRA, evaluation, a router sweep, and an HTML report`)
      .option('--out <dir>', 'output directory (default runs/demo-TIME)')
      .option('--quick', `a much smaller run (${DEMO_QUICK_TIMING}; what the tests run)`)
      .option('--force', 'replace an existing non-empty --out')
      .option('--json', 'print the stages\' numbers as one JSON object (progress goes to stderr)')
      .addHelpText('after', examples([
        ['moe-tune demo', `${DEMO_TIMING}; prints each stage and where the report is`],
        ['moe-tune demo --out demo --quick', `a much smaller run, ${DEMO_QUICK_TIMING}`],
      ]))
      .action((o: DemoCliOptions) => demoAction(o));
  },
};
