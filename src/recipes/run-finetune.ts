/**
 * Running a fine-tuning recipe: the base model (a local directory; the CLI pulls Hub ids first),
 * or, for tiny variants without a base, a randomly initialised model built from model.config with
 * a byte-level BPE trained on Brown text; loaded 4-bit when quantization.method is nf4; then the
 * surgery passes, the router, LoRA (finetune-setup.ts, shared with export-job); fine-tuned with src/train's finetune() on the data files (or a
 * JSONL of Brown samples written into the run); evaluated before and after on held-out documents;
 * optionally swept over routers. One run per seed (RUN_DIR/seed-S when there are several).
 *
 * Per run directory: recipe.yaml / recipe.json, metrics.jsonl, checkpoints/, eval.json,
 * final/model (the whole model, 4-bit layers as such, with its tokenizer), final/adapter (a PEFT
 * adapter, when the LoRA sits on an unchanged transformers architecture), sweep/ (eval.sweep).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { exportPeftAdapter, peftAdapterBlocker } from '../convert/index.js';
import { remoteCodeReason } from '../models/remote-code.js';
import { checkpointFloatDtype, writeJsonAtomic } from '../io/index.js';
import type { CausalLM } from '../models/causal-lm.js';
import type { EvalResult } from '../train/evaluate.js';
import { finetune } from '../train/finetune.js';
import { packedRows, sweepPerplexity, type SweepRun } from './eval-sweep.js';
import { buildFinetuneModel, prepareFinetune, type FinetuneSetupOptions } from './finetune-setup.js';
import type { ResolvedRecipe } from './load-recipe.js';
import type { RecipeRunOptions } from './run-pretrain.js';
import { seedRunDir, stepsOf, trainerConfigOf } from './trainer-config.js';
import { recipeExtra, writeResolvedRecipe } from './write-recipe.js';

export interface FinetuneRunOptions extends RecipeRunOptions, FinetuneSetupOptions {
  /**
   * The model as the user named it (a Hub id, or a directory): recorded as base_model in recipe.yaml /
   * recipe.json, the checkpoints and adapter_config.json, so every output names the model actually used and
   * `train --recipe RUN/recipe.yaml` re-runs on it. Default: modelDir (absolute), else the recipe's base_model.
   */
  modelRef?: string | null;
}

/** The recipe as run: base_model is the model actually used (--model wins over the recipe). */
export function recordedRecipe(resolved: ResolvedRecipe, o: Pick<FinetuneRunOptions, 'modelRef' | 'modelDir'>): ResolvedRecipe {
  const used = o.modelRef ?? (o.modelDir ? path.resolve(o.modelDir) : null);
  if (!used || used === resolved.recipe.base_model) return resolved;
  return { ...resolved, recipe: { ...resolved.recipe, base_model: used } as ResolvedRecipe['recipe'] };
}

export interface FinetuneSeedResult {
  seed: number;
  runDir: string;
  /** RUN_DIR/final/model; null when the run was interrupted (its checkpoint is the output). */
  modelDir: string | null;
  adapterDir: string | null;
  /** Why no PEFT adapter was written for a LoRA run (the whole model is the output), or null. */
  adapterSkipped: string | null;
  metricsPath: string;
  steps: number;
  stopped: boolean;
  evalBefore: EvalResult | null;
  evalAfter: EvalResult | null;
  surgeryReport: string[];
  sweep: SweepRun | null;
  /** The trained model of the last seed (null for earlier seeds, to free memory). */
  model: CausalLM | null;
}

export interface FinetuneRecipeResult {
  runDir: string;
  seeds: FinetuneSeedResult[];
  stopped: boolean;
  trainSequences: number;
  evalSequences: number;
  skippedLines: number;
}

export async function runFinetuneRecipe(given: ResolvedRecipe, o: FinetuneRunOptions): Promise<FinetuneRecipeResult> {
  const resolved = recordedRecipe(given, o);
  const r = resolved.recipe;
  if (r.kind !== 'finetune') throw new Error(`${resolved.file}: kind is ${r.kind}; use moe-tune pretrain for pretraining recipes`);
  const log = o.log ?? (() => {});
  const p = await prepareFinetune(resolved, o, log);
  writeResolvedRecipe(o.runDir, resolved);
  log(`data: ${p.train.count} training sequences of ${r.train.seq_len} tokens${p.eval ? `, ${p.eval.count} held out` : ''} from ${p.files.join(', ')}${p.skippedLines ? ` (${p.skippedLines} bad lines skipped)` : ''}`);
  const steps = stepsOf(r, p.train.count);
  const seeds: FinetuneSeedResult[] = [];
  for (const seed of r.seeds) {
    const runDir = seedRunDir(o.runDir, r.seeds, seed);
    if (runDir !== o.runDir) writeResolvedRecipe(runDir, resolved);
    if (r.seeds.length > 1) log(`seed ${seed}: ${runDir}`);
    const { model, surgeryReport } = await buildFinetuneModel(resolved, p, seed, log);
    const res = await finetune({
      runDir,
      model,
      train: p.train,
      eval: p.eval,
      batchSize: r.train.batch_size,
      dataSeed: seed,
      trainer: trainerConfigOf(r, steps, seed),
      auxLosses: resolved.compiled.auxLosses(),
      evalBatchSize: r.eval.batch_size,
      evalMaxBatches: r.eval.max_batches,
      resume: o.resume,
      progress: o.progress,
      save: 'full',
      // final/model keeps the base checkpoint's dtype (a bf16 base stays bf16)
      ...(p.base.kind === 'dir' ? { saveDtype: checkpointFloatDtype(p.base.dir) } : {}),
      extra: recipeExtra(resolved, { seed }),
      onTrainer: o.onTrainer,
    });
    const modelDir = res.outputDir === null ? null : path.join(res.outputDir, 'model');
    if (p.tok && modelDir) p.tok.save(modelDir);
    let adapterDir: string | null = null;
    let adapterSkipped: string | null = null;
    if (res.outputDir && model.config.extensions.lora) {
      const blocker = peftAdapterBlocker(model, [...res.trainer.params.keys()]);
      if (blocker === null) {
        adapterDir = path.join(res.outputDir, 'adapter');
        const exported = await exportPeftAdapter(model, adapterDir, { baseModelNameOrPath: r.base_model ?? null, force: true, trained: [...res.trainer.params.keys()] });
        for (const note of exported.notes) log(`final/adapter: ${note}`);
      } else {
        adapterSkipped = `no final/adapter: ${blocker}; the trained model is ${modelDir ?? runDir}${remoteCodeReason(model.config) ? ' (transformers: AutoModelForCausalLM.from_pretrained(dir, trust_remote_code=True))' : ''}`;
        log(adapterSkipped);
      }
    }
    const ev = (e: EvalResult | null): Record<string, number | null> | null => (e ? { loss: e.loss, ppl: e.ppl, tokens: e.tokens, load: e.load } : null);
    writeJsonAtomic(path.join(runDir, 'eval.json'), {
      steps: res.train.step, ...(res.train.stopped ? { interrupted: true, checkpoint: res.train.lastCheckpoint } : {}), before: ev(res.evalBefore), after: ev(res.evalAfter),
    });
    if (res.train.stopped) writeJsonAtomic(path.join(runDir, 'summary.json'), { interrupted: true, steps: res.train.step, checkpoint: res.train.lastCheckpoint });
    else fs.rmSync(path.join(runDir, 'summary.json'), { force: true }); // a resumed run is no longer interrupted
    let sweep: SweepRun | null = null;
    if (resolved.compiled.sweep.length > 0 && p.eval && !res.train.stopped) {
      log(`router sweep: ${r.eval.sweep.join(', ')}`);
      sweep = sweepPerplexity(model, packedRows(p.eval, r.eval.max_batches === null ? 64 : r.eval.max_batches * r.eval.batch_size), resolved.compiled.sweep,
        path.join(runDir, 'sweep'), { model: modelDir ?? runDir, data: 'held-out documents' });
    }
    for (const s of seeds) s.model = null;
    seeds.push({
      seed, runDir, modelDir, adapterDir, adapterSkipped, metricsPath: res.metricsPath, steps: res.train.step, stopped: res.train.stopped,
      evalBefore: res.evalBefore, evalAfter: res.evalAfter, surgeryReport, sweep, model,
    });
  }
  if (r.seeds.length > 1) {
    const after = seeds.map((s) => s.evalAfter).filter((e): e is EvalResult => e !== null);
    const mean = (f: (e: EvalResult) => number): number | null => (after.length ? after.reduce((a, e) => a + f(e), 0) / after.length : null);
    writeJsonAtomic(path.join(o.runDir, 'summary.json'), {
      seeds: seeds.map((s) => ({ seed: s.seed, run_dir: s.runDir, steps: s.steps, eval_after: s.evalAfter ? { loss: s.evalAfter.loss, load: s.evalAfter.load } : null })),
      mean: { eval_loss: mean((e) => e.loss), load: after.every((e) => e.load !== null) ? mean((e) => e.load!) : null },
    });
  }
  return { runDir: o.runDir, seeds, stopped: seeds.some((s) => s.stopped), trainSequences: p.train.count, evalSequences: p.eval?.count ?? 0, skippedLines: p.skippedLines };
}
