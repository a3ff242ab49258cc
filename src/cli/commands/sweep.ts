/**
 * `moe-tune sweep --model DIR --data FILE --router top-p:p=0.1..0.9:0.1 [...]`: the post-hoc
 * trade-off curve (paper 003, Table 7) for any checkpoint: quality against activated experts per
 * token under a range of routers, written as CSV, JSON, SVG and a self-contained HTML page.
 */
import type { Command } from 'commander';
import * as path from 'node:path';
import { currentRouterText } from '../../eval/router-choice.js';
import { parseRouterSeries, runSweep, type RouterSeries, type SweepPoint } from '../../eval/router-sweep.js';
import { writeSweepOutputs } from '../../report/sweep-report.js';
import { routerHelp } from '../../routers/registry.js';
import { getBackend } from '../../tensor/index.js';
import { examples, type CliCommand } from '../command.js';
import { openModel, requireFile } from '../model-access.js';
import { choiceArg, collect, intArg } from '../options.js';
import { note, printJson, printTable } from '../output.js';
import { taskRunner, type EvalTask } from './eval.js';

interface SweepCliOptions {
  model: string;
  data: string;
  router: string[];
  task: EvalTask;
  out?: string;
  batch: number;
  delimiter: string;
  json?: boolean;
}

function stamp(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

function row(p: SweepPoint, metric: 'nll' | 'accuracy'): string[] {
  const m = metric === 'nll' ? p.nll : p.accuracy;
  return [p.series === 'default' ? `${p.router} (default)` : p.router, p.load.toFixed(4), p.flops ? p.flops.moe.toFixed(4) : '-', p.flops ? p.flops.model.toFixed(4) : '-', m === null ? '-' : m.toFixed(6), p.seconds.toFixed(2)];
}

function sweepAction(opts: SweepCliOptions): void {
  requireFile(opts.data, 'data file');
  const series: RouterSeries[] = opts.router.map((r) => {
    try {
      return parseRouterSeries(r);
    } catch (err) {
      throw new Error(`--router '${r}': ${(err as Error).message}`);
    }
  });
  const { model, config } = openModel(opts.model);
  if (model.moeBlocks().length === 0) throw new Error(`sweep: ${opts.model} is a dense model (${config.architecture}); a router sweep needs MoE layers`);
  const runner = taskRunner(model, opts.model, opts.data, opts.task, { batch: opts.batch, delimiter: opts.delimiter, quiet: true });
  const created = new Date();
  const out = opts.out ?? path.join('runs', `sweep-${path.basename(path.resolve(opts.model))}-${stamp(created)}`);
  const metric = opts.task === 'mc' ? 'accuracy' : 'nll';
  const result = runSweep(series, {
    task: opts.task,
    defaultRouter: currentRouterText(model) ?? 'default',
    evaluate: (router) => {
      const { ppl, mc } = runner.run(router);
      if (ppl) return { nll: ppl.nll, ppl: ppl.ppl, tokens: ppl.tokens, routerStats: ppl.routerStats };
      return { accuracy: mc!.accuracy, accNorm: mc!.accNorm, routerStats: mc!.routerStats };
    },
    onPoint: (p, i, total) => {
      if (!opts.json) note(`[${i + 1}/${total}] ${p.router}: load ${p.load.toFixed(4)}, ${metric} ${(metric === 'nll' ? p.nll : p.accuracy)?.toFixed(6) ?? '-'}`);
    },
  });
  const files = writeSweepOutputs(result, out, { model: opts.model, data: opts.data, backend: getBackend().name, createdAt: created.toISOString() });
  if (opts.json) {
    printJson({ model: opts.model, data: opts.data, task: opts.task, metric, out, files, backend: getBackend().name, baseline: result.baseline, points: result.points });
    return;
  }
  printTable(['router', 'load', 'FLOPs moe', 'FLOPs model', metric, 'seconds'], [result.baseline, ...result.points].map((p) => row(p, metric)));
  process.stdout.write(`\nwrote ${files.csv}, ${files.json}, ${files.svg}, ${files.html}\n`);
}

export const sweepCommand: CliCommand = {
  name: 'sweep',
  register(program: Command) {
    program.command('sweep')
      .description('evaluate one checkpoint under a range of routers and plot NLL (or accuracy) against activated experts per token (the post-hoc trade-off of paper 003, Table 7)')
      .requiredOption('--model <dir>', 'model directory with MoE layers')
      .requiredOption('--data <file>', 'JSONL evaluation data (as for eval)')
      .requiredOption('--router <spec>', 'router range NAME:key=a..b:step[,key=value] (repeatable; one range per spec; a spec without a range is one point)', collect)
      .option('--task <task>', 'ppl (plot NLL) or mc (plot accuracy)', choiceArg(['ppl', 'mc'] as const), 'ppl')
      .option('--out <dir>', 'output directory for sweep.{csv,json,svg,html} (default runs/sweep-MODEL-TIME)')
      .option('--batch <n>', 'sequences of equal length per forward pass (ppl)', intArg(1), 1)
      .option('--delimiter <text>', 'text between context and choice (mc)', ' ')
      .option('--json', 'print one JSON object with every point')
      .addHelpText('after', examples([
        ['moe-tune sweep --model ./mixtral --data val.jsonl --router top-p:p=0.1..0.9:0.1 --out sweep/', 'NLL vs load for top-p thresholds 0.1, 0.2, ..., 0.9 (plus the default router)'],
        ['moe-tune sweep --model ./mixtral --data val.jsonl --router top-k:k=1..4 --router threshold:t=0.5..1:0.1', 'two router families on one plot'],
        ['moe-tune sweep --model ./mixtral --data arc.jsonl --task mc --router top-p:p=0.2..0.8:0.2', 'accuracy vs load'],
      ]))
      .addHelpText('after', () => `\nRouters (NAME:key=default; a key without one is required or derived): ${routerHelp()}\n`)
      .action((opts: SweepCliOptions) => sweepAction(opts));
  },
};
