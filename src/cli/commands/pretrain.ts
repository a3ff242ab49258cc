/**
 * `moe-tune pretrain --recipe FILE|NAME --out RUN_DIR [--set k=v]... [--steps N] [--resume] [--tiny]`:
 * pretrains a MoE (or dense) decoder from scratch per a recipe, on the embedded Brown corpus or
 * the recipe's files.
 */
import type { Command } from 'commander';
import * as path from 'node:path';
import { runPretrainRecipe } from '../../recipes/index.js';
import { examples, type CliCommand } from '../command.js';
import { printJson } from '../output.js';
import { addRecipeOptions, recipesHelp, resolveRecipeOption, trainingSession, type RecipeCliOptions } from '../recipe-options.js';

interface PretrainCliOptions extends RecipeCliOptions {
  json?: boolean;
}

async function pretrainAction(o: PretrainCliOptions): Promise<void> {
  const resolved = resolveRecipeOption(o);
  if (resolved.recipe.kind !== 'pretrain') throw new Error(`${resolved.file}: a ${resolved.recipe.kind} recipe; run it with moe-tune train`);
  const s = trainingSession(o.out, o.resume, o.json, { recipe: resolved, allowRecipeChange: o.allowRecipeChange, what: 'moe-tune pretrain' });
  s.log(`recipe ${resolved.recipe.name} (${resolved.variant}) from ${resolved.file}: ${resolved.recipe.paper}`);
  const res = await s.run(() => runPretrainRecipe(resolved, { runDir: o.out, resume: o.resume, progress: s.progress, onTrainer: s.onTrainer, log: s.log }));
  if (o.json) {
    printJson({
      run_dir: res.runDir, recipe: resolved.recipe.name, variant: resolved.variant, stopped: res.stopped,
      seeds: res.seeds.map((x) => ({ seed: x.seed, run_dir: x.runDir, model: x.result.metrics.interrupted ? null : x.result.modelDir, metrics: x.result.metricsPath, ...x.result.metrics, sweep: x.sweep?.files ?? null })),
    });
    return;
  }
  for (const x of res.seeds) {
    const m = x.result.metrics;
    const where = res.seeds.length > 1 ? `seed ${x.seed}: ` : '';
    if (m.stopped) process.stdout.write(`${where}${m.interrupted ? 'interrupted: ' : ''}stopped at step ${m.steps} of ${resolved.recipe.train.steps} with a checkpoint in ${path.join(x.runDir, 'checkpoints')}; continue with --resume\n`);
    process.stdout.write(`${where}validation perplexity ${m.valPpl.toFixed(2)} (unigram ${m.unigramPpl.toFixed(2)})${m.load !== null ? `, load ${m.load.toFixed(2)} experts per token` : ''} after ${m.steps} steps${x.sweep ? `; router sweep in ${path.dirname(x.sweep.files.html)}` : ''}\n`);
    process.stdout.write(`${where}${m.interrupted ? 'model: not written (interrupted)' : `model: ${x.result.modelDir}`}  metrics: ${x.result.metricsPath}  (moe-tune report ${x.runDir})\n`);
  }
}

export const pretrainCommand: CliCommand = {
  name: 'pretrain',
  register(program: Command) {
    addRecipeOptions(program.command('pretrain')
      .description('pretrain a MoE or dense decoder from scratch per a recipe (default corpus: the embedded Brown corpus; a BPE tokenizer is trained when none is given)'))
      .option('--json', 'print the result as one JSON object')
      .addHelpText('after', examples([
        ['moe-tune pretrain --recipe tcmoe-a2-1e-5 --tiny --out runs/tcmoe', "the TC-MoE recipe's tiny variant on the Brown corpus (about a minute)"],
        ['moe-tune pretrain --recipe topp-dynamic --out runs/topp --data corpus.txt --set train.steps=2000', 'the full top-p setting on your corpus, 2000 steps'],
        ['moe-tune pretrain --recipe runs/topp/recipe.yaml --out runs/topp --resume', 'continue a run (Ctrl-C writes a checkpoint)'],
      ]))
      .addHelpText('after', () => recipesHelp('pretrain'))
      .action((o: PretrainCliOptions) => pretrainAction(o));
  },
};
