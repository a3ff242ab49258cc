/**
 * `moe-tune train --recipe FILE|NAME --model DIR|ORG/NAME --data FILE --out RUN_DIR [--set k=v]...
 * [--resume] [--tiny]`: fine-tunes a model per a recipe (quantisation, surgery, LoRA, router, aux
 * losses). A --model that is not a local directory is pulled from the Hugging Face Hub first.
 */
import type { Command } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NAMED_CHAT_TEMPLATES } from '../../data/chat-templates.js';
import { recordedRecipe, runFinetuneRecipe } from '../../recipes/index.js';
import { examples, type CliCommand } from '../command.js';
import { resolveModelDir } from '../model-source.js';
import { printJson } from '../output.js';
import { addRecipeOptions, recipesHelp, resolveRecipeOption, trainingSession, type RecipeCliOptions } from '../recipe-options.js';

interface TrainCliOptions extends RecipeCliOptions {
  model?: string;
  endpoint?: string;
  cacheDir?: string;
  json?: boolean;
  chatTemplate?: string;
}

const f4 = (v: number | null | undefined): string => (v === null || v === undefined ? '-' : v.toFixed(4));

async function trainAction(o: TrainCliOptions): Promise<void> {
  // --model wins over the recipe's base_model everywhere the run records it (a local directory as an absolute path)
  const modelRef = o.model ? (fs.existsSync(o.model) ? path.resolve(o.model) : o.model) : null;
  const resolved = recordedRecipe(resolveRecipeOption({ ...o, set: [...(o.set ?? []), ...(o.chatTemplate ? [`tokenizer.chat_template=${o.chatTemplate}`] : [])] }), { modelRef });
  const r = resolved.recipe;
  if (r.kind !== 'finetune') throw new Error(`${resolved.file}: a ${r.kind} recipe; run it with moe-tune pretrain`);
  const ref = r.base_model;
  const s = trainingSession(o.out, o.resume, o.json, { recipe: resolved, allowRecipeChange: o.allowRecipeChange, what: 'moe-tune train' });
  s.log(`recipe ${r.name} (${resolved.variant}) from ${resolved.file}: ${r.paper}`);
  const res = await s.run(async () => {
    const modelDir = ref ? await resolveModelDir(ref, { endpoint: o.endpoint, cacheDir: o.cacheDir, log: s.log }) : null;
    return runFinetuneRecipe(resolved, { runDir: o.out, modelDir, modelRef: ref, resume: o.resume, progress: s.progress, onTrainer: s.onTrainer, log: s.log });
  });
  if (o.json) {
    printJson({
      run_dir: res.runDir, recipe: r.name, variant: resolved.variant, stopped: res.stopped, train_sequences: res.trainSequences, eval_sequences: res.evalSequences,
      skipped_lines: res.skippedLines,
      seeds: res.seeds.map((x) => ({
        seed: x.seed, run_dir: x.runDir, model: x.modelDir, adapter: x.adapterDir, adapter_skipped: x.adapterSkipped, metrics: x.metricsPath, steps: x.steps, stopped: x.stopped,
        eval_before: x.evalBefore, eval_after: x.evalAfter, surgery: x.surgeryReport, sweep: x.sweep?.files ?? null,
      })),
    });
    return;
  }
  for (const x of res.seeds) {
    const where = res.seeds.length > 1 ? `seed ${x.seed}: ` : '';
    if (x.stopped) process.stdout.write(`${where}interrupted: stopped at step ${x.steps} with a checkpoint in ${path.join(x.runDir, 'checkpoints')}; no final model written; continue with --resume\n`);
    const b = x.evalBefore;
    const a = x.evalAfter;
    if (a) process.stdout.write(`${where}eval loss ${b ? `${f4(b.loss)} -> ` : ''}${f4(a.loss)}${a.load !== null ? `, load ${b?.load != null ? `${b.load.toFixed(2)} -> ` : ''}${a.load.toFixed(2)} experts per token` : ''} after ${x.steps} steps\n`);
    process.stdout.write(`${where}model: ${x.modelDir ?? 'not written (interrupted)'}${x.adapterDir ? `  adapter (PEFT): ${x.adapterDir}` : ''}  metrics: ${x.metricsPath}  (moe-tune report ${x.runDir})\n`);
    if (x.adapterSkipped) process.stdout.write(`${where}${x.adapterSkipped}\n`);
  }
}

export const trainCommand: CliCommand = {
  name: 'train',
  register(program: Command) {
    addRecipeOptions(program.command('train')
      .description("fine-tune a model per a recipe: 4-bit base (QLoRA), surgery passes, LoRA / Mo-LoRA, router and aux losses with weight schedules; Ctrl-C writes a checkpoint")
      .option('--model <dir|org/name>', "base model directory, or a Hugging Face repo id to pull first (default: the recipe's base_model)")
      .option('--endpoint <url>', 'Hub endpoint for pulling --model (default: $HF_ENDPOINT, else https://huggingface.co)')
      .option('--cache-dir <dir>', 'Hub cache for pulling --model (default: $HF_HUB_CACHE, else $HF_HOME/hub)'))
      .option('--chat-template <file|name>', `chat template for chat data (messages, ShareGPT) when the model directory has none: a Jinja file or ${Object.keys(NAMED_CHAT_TEMPLATES).join(', ')} (sets tokenizer.chat_template)`)
      .option('--json', 'print the result as one JSON object')
      .addHelpText('after', examples([
        ['moe-tune train --recipe adamoe-mixtral-qlora --tiny --out runs/adamoe', 'AdaMoE QLoRA on a tiny Mixtral with Brown samples (no download)'],
        ['moe-tune train --recipe adamoe-mixtral-qlora --model mistralai/Mixtral-8x7B-v0.1 --data piqa.jsonl --out runs/adamoe-piqa', 'the paper setting: pulls the base from the Hub'],
        ['moe-tune train --recipe adamoe-llama2-m5k4 --model ./llama2 --data rte.jsonl --out runs/m5k4 --set seeds=[0]', 'Mo-LoRA m5k4, one seed'],
        ['moe-tune train --recipe runs/m5k4/recipe.yaml --model ./llama2 --out runs/m5k4 --resume', 'continue after Ctrl-C'],
      ]))
      .addHelpText('after', () => recipesHelp('finetune'))
      .action((o: TrainCliOptions) => trainAction(o));
  },
};
