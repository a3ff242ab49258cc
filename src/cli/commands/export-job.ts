/**
 * `moe-tune export-job --recipe R [--model DIR|org/name] [--data FILE]... --out JOB [--processes N]`: the recipe as
 * a self-contained PyTorch job (model, PEFT adapter, packed data in moe-tune's order, train.py, launch.sh,
 * requirements.txt, README.md) for accelerate / torchrun on GPUs; `moe-tune import-job JOB/out` brings it back.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { exportJob } from '../../recipes/export-job.js';
import { recordedRecipe } from '../../recipes/run-finetune.js';
import { examples, type CliCommand } from '../command.js';
import { resolveModelDir } from '../model-source.js';
import { collect, intArg } from '../options.js';
import { note, printJson } from '../output.js';
import { resolveRecipeOption } from '../recipe-options.js';

interface ExportJobCliOptions {
  recipe: string;
  out: string;
  model?: string;
  data?: string[];
  set?: string[];
  steps?: number;
  tiny?: boolean;
  processes: number;
  seed?: number;
  force?: boolean;
  endpoint?: string;
  cacheDir?: string;
  json?: boolean;
}

async function exportJobAction(o: ExportJobCliOptions): Promise<void> {
  // --model wins over the recipe's base_model in the job's recipe.yaml (a local directory as an absolute path), as in train
  const modelRef = o.model ? (fs.existsSync(o.model) ? path.resolve(o.model) : o.model) : null;
  const resolved = recordedRecipe(resolveRecipeOption(o), { modelRef });
  const r = resolved.recipe;
  const log = o.json ? note : (line: string): void => { process.stdout.write(`${line}\n`); };
  log(`recipe ${r.name} (${resolved.variant}) from ${resolved.file}`);
  const ref = r.base_model;
  const modelDir = ref ? await resolveModelDir(ref, { endpoint: o.endpoint, cacheDir: o.cacheDir, log }) : null;
  const res = await exportJob(resolved, { jobDir: o.out, modelDir, processes: o.processes, seed: o.seed, force: o.force, log });
  if (o.json) {
    printJson({
      job_dir: res.jobDir, recipe: r.name, variant: resolved.variant, steps: res.steps, seed: res.seed, processes: res.processes,
      train_sequences: res.trainSequences, eval_sequences: res.evalSequences, trainable: res.trainable.length, surgery: res.surgeryReport,
    });
    return;
  }
  process.stdout.write(`wrote ${res.jobDir}: ${res.steps} steps, ${res.trainSequences} training sequences, ${res.trainable.length} trainable tensors, ${res.processes} process(es)\n`);
  process.stdout.write(`run it: cd ${res.jobDir} && pip install -r requirements.txt && bash launch.sh   (then: moe-tune import-job ${res.jobDir}/out --out RUN)\n`);
}

export const exportJobCommand: CliCommand = {
  name: 'export-job',
  register(program: Command) {
    program.command('export-job')
      .description('write a fine-tuning recipe as a PyTorch job directory (transformers remote-code model, PEFT LoRA, packed data in moe-tune\'s order, train.py for accelerate / torchrun, launch.sh, README) for GPUs')
      .requiredOption('--recipe <file|name>', 'recipe YAML file, or the name of a recipe shipped in recipes/')
      .requiredOption('--out <job_dir>', 'job directory to write')
      .option('--model <dir|org/name>', "base model directory, or a Hugging Face repo id to pull first (default: the recipe's base_model)")
      .option('--data <file>', 'training data file (JSONL or text; repeatable); sets data.source=files', collect)
      .option('--set <key.path=value>', 'override a recipe setting (repeatable)', collect)
      .option('--steps <n>', 'optimizer steps (sets train.steps, clears train.epochs)', intArg(1))
      .option('--tiny', "use the recipe's tiny variant")
      .option('--processes <n>', 'processes (GPUs) launch.sh starts; train.grad_accum must be a multiple of it', intArg(1), 1)
      .option('--seed <n>', "which of the recipe's seeds (default: the first)", intArg(0))
      .option('--force', 'replace an existing job directory')
      .option('--endpoint <url>', 'Hub endpoint for pulling --model')
      .option('--cache-dir <dir>', 'Hub cache for pulling --model')
      .option('--json', 'print the result as one JSON object')
      .addHelpText('after', examples([
        ['moe-tune export-job --recipe adamoe-mixtral-qlora --tiny --set quantization.method=none --out jobs/tiny --processes 2', 'a tiny job for 2 CPU processes (gloo)'],
        ['moe-tune export-job --recipe adamoe-mixtral-qlora --model mistralai/Mixtral-8x7B-v0.1 --data piqa.jsonl --set quantization.method=none --set train.grad_accum=8 --out jobs/adamoe --processes 8', 'the paper setting for one 8-GPU node'],
      ]))
      .action((o: ExportJobCliOptions) => exportJobAction(o));
  },
};
