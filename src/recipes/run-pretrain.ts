/**
 * Running a pretrain recipe: for each seed, src/train's pretrain() on the recipe's corpus (the
 * embedded Brown corpus by default) with the recipe's model config, router, aux losses and trainer
 * settings; then the recipe's router sweep on held-out text. The resolved recipe is written into
 * the run directory (recipe.yaml, recipe.json) and stored with every checkpoint.
 */
import * as path from 'node:path';
import { loadBrownCorpus } from '../data/brown-corpus.js';
import { packDocuments } from '../data/packing.js';
import { readTextDocuments, tokenizeTexts } from '../data/text-dataset.js';
import { writeJsonAtomic } from '../io/index.js';
import type { PretrainCorpus, PretrainResult } from '../train/pretrain.js';
import { pretrain } from '../train/pretrain.js';
import type { ProgressSink } from '../train/progress.js';
import type { Trainer } from '../train/trainer.js';
import { pretrainModelConfig } from './compile.js';
import { packedRows, sweepPerplexity, type SweepRun } from './eval-sweep.js';
import type { ResolvedRecipe } from './load-recipe.js';
import type { Recipe } from './schema.js';
import { seedRunDir, trainerConfigOf } from './trainer-config.js';
import { recipeExtra, writeResolvedRecipe } from './write-recipe.js';

export interface RecipeRunOptions {
  runDir: string;
  resume?: boolean;
  progress?: ProgressSink;
  /** Called with each trainer before it runs (Ctrl-C handling). */
  onTrainer?: (trainer: Trainer) => void;
  /** Status lines (what is being done). */
  log?: (line: string) => void;
}

export interface PretrainSeedResult {
  seed: number;
  runDir: string;
  result: PretrainResult;
  sweep: SweepRun | null;
}

export interface PretrainRecipeResult {
  runDir: string;
  seeds: PretrainSeedResult[];
  /** Whether a run stopped early (Ctrl-C, time budget). */
  stopped: boolean;
}

function corpusOf(r: Recipe): PretrainCorpus {
  const d = r.data;
  if (d.source === 'brown') return { kind: 'brown', ...(d.max_docs ? { maxTrainDocs: d.max_docs } : {}) };
  if (d.files.length === 0) throw new Error('data.files: data.source is files but no files are listed (pass them with --set data.files=[...])');
  return { kind: 'files', train: d.files, ...(d.validation.length ? { validation: d.validation } : {}), split: d.split };
}

/** The held-out texts pretrain() validates on, as packed sequences for the sweep. */
function heldOutRows(r: Recipe, res: PretrainResult): Int32Array[] {
  const d = r.data;
  let texts;
  if (d.source === 'brown') texts = loadBrownCorpus().validation;
  else if (d.validation.length > 0) texts = readTextDocuments(d.validation, d.split);
  else texts = readTextDocuments(d.files, d.split).filter((_, i) => i % 20 === 19);
  const eos = res.tokenizer.eosId ?? 0;
  const packed = packDocuments(tokenizeTexts(texts, res.tokenizer, { addBos: false }), { seqLen: r.train.seq_len, eosId: eos });
  const max = r.eval.max_batches === null ? 64 : r.eval.max_batches * r.eval.batch_size;
  return packedRows(packed, max);
}

export async function runPretrainRecipe(resolved: ResolvedRecipe, o: RecipeRunOptions): Promise<PretrainRecipeResult> {
  const r = resolved.recipe;
  if (r.kind !== 'pretrain') throw new Error(`${resolved.file}: kind is ${r.kind}; use moe-tune train for fine-tuning recipes`);
  const corpus = corpusOf(r);
  const seeds: PretrainSeedResult[] = [];
  let stopped = false;
  writeResolvedRecipe(o.runDir, resolved);
  for (const seed of r.seeds) {
    const runDir = seedRunDir(o.runDir, r.seeds, seed);
    if (runDir !== o.runDir) writeResolvedRecipe(runDir, resolved);
    if (r.seeds.length > 1) o.log?.(`seed ${seed}: ${runDir}`);
    const cfg = pretrainModelConfig(r, r.tokenizer.vocab_size);
    delete cfg['vocab_size'];
    const res = await pretrain({
      runDir,
      model: cfg,
      init: { seed, ...(r.model!.init.std !== undefined ? { std: r.model!.init.std } : {}), ...(r.model!.init.router_std !== undefined ? { routerStd: r.model!.init.router_std } : {}) },
      tokenizer: { dir: r.tokenizer.dir, vocabSize: r.tokenizer.vocab_size, minFrequency: r.tokenizer.min_frequency },
      corpus,
      seqLen: r.train.seq_len,
      batchSize: r.train.batch_size,
      dataSeed: seed,
      trainer: trainerConfigOf(r, r.train.steps!, seed),
      auxLosses: resolved.compiled.auxLosses(),
      evalBatchSize: r.eval.batch_size,
      evalMaxBatches: r.eval.max_batches,
      timeBudgetS: r.train.time_budget_s,
      resume: o.resume,
      progress: o.progress,
      extra: recipeExtra(resolved, { seed }),
      onTrainer: o.onTrainer,
    });
    stopped ||= res.metrics.stopped;
    let sweep: SweepRun | null = null;
    if (resolved.compiled.sweep.length > 0 && !res.metrics.stopped) {
      o.log?.(`router sweep: ${r.eval.sweep.join(', ')}`);
      sweep = sweepPerplexity(res.model, heldOutRows(r, res), resolved.compiled.sweep, path.join(runDir, 'sweep'), { model: res.modelDir, data: 'held-out text' });
    }
    seeds.push({ seed, runDir, result: res, sweep });
  }
  if (r.seeds.length > 1) {
    const mean = (f: (s: PretrainSeedResult) => number): number => seeds.reduce((a, s) => a + f(s), 0) / seeds.length;
    writeJsonAtomic(path.join(o.runDir, 'summary.json'), {
      seeds: seeds.map((s) => ({ seed: s.seed, run_dir: s.runDir, metrics: s.result.metrics })),
      mean: { val_loss: mean((s) => s.result.metrics.valLoss), val_ppl: mean((s) => s.result.metrics.valPpl), load: seeds.every((s) => s.result.metrics.load !== null) ? mean((s) => s.result.metrics.load!) : null },
    });
  }
  return { runDir: o.runDir, seeds, stopped };
}
