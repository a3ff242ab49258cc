/**
 * `moe-tune import-job JOB/out --out RUN`: the weights an exported job trained, back as a moe-tune run (final/model,
 * metrics.jsonl for `moe-tune report`, eval.json, the recipe).
 */
import type { Command } from 'commander';
import { importJob } from '../../convert/import-job.js';
import { examples, type CliCommand } from '../command.js';
import { note, printJson } from '../output.js';

interface ImportJobCliOptions {
  out: string;
  force?: boolean;
  json?: boolean;
}

export const importJobCommand: CliCommand = {
  name: 'import-job',
  register(program: Command) {
    program.command('import-job')
      .description('bring the result of an exported job (train.py) back: the trained model as a moe-tune model directory, its metrics as a run')
      .argument('<job_out>', 'the job\'s output directory (JOB/out), or the job directory')
      .requiredOption('--out <run_dir>', 'run directory to write (final/model, metrics.jsonl, eval.json, recipe.yaml)')
      .option('--force', 'replace an existing run directory')
      .option('--json', 'print the result as one JSON object')
      .addHelpText('after', examples([
        ['moe-tune import-job jobs/adamoe/out --out runs/adamoe-gpu', 'then: moe-tune eval --model runs/adamoe-gpu/final/model ..., moe-tune report runs/adamoe-gpu'],
      ]))
      .action(async (dir: string, o: ImportJobCliOptions) => {
        const res = await importJob(dir, o.out, { force: o.force, log: o.json ? note : undefined });
        if (o.json) printJson({ run_dir: res.runDir, model: res.modelDir, metrics: res.metricsPath, steps: res.steps, tensors: res.tensors, eval_after: res.evalAfter });
        else process.stdout.write(`imported ${res.steps} steps (${res.tensors} trained tensors) into ${res.runDir}: model ${res.modelDir}${res.evalAfter !== null ? `, eval loss ${res.evalAfter.toFixed(6)}` : ''} (moe-tune report ${res.runDir})\n`);
      });
  },
};
