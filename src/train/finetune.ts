/**
 * Fine-tuning a prepared model (loaded, optionally 4-bit, with surgery passes and adapters already
 * applied by the caller) on packed data with the Trainer, then saving what trained.
 *
 * By default the trainable set is `current`: whatever requires grad when fine-tuning starts (after
 * applyLora / surgery froze the base), so the CLI's adapter choices decide it; pass
 * `trainer.trainable` to override (e.g. ['lora', 'gate2']).
 *
 * Output: RUN_DIR/final/trainable.safetensors (the trained tensors under their Hugging Face keys)
 * + trainable.json (names, step, eval) — the PEFT export is the convert layer's job, on the
 * returned model. With save 'full': RUN_DIR/final/model (4-bit layers written as such).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TokenizedDocument } from '../data/documents.js';
import { loadTokenizedDataset } from '../data/load-dataset.js';
import { packDocuments, type PackedSequences } from '../data/packing.js';
import type { MoeTokenizer } from '../data/tokenizer.js';
import { writeJsonAtomic, writeSafetensors, type FloatStorageDtype } from '../io/index.js';
import type { CausalLM } from '../models/causal-lm.js';
import { saveModel } from '../models/save.js';
import { nf4Sites, saveQuantizedModel } from '../quant/index.js';
import { packedBatchSource } from './data-source.js';
import { evaluateLoss, type EvalResult } from './evaluate.js';
import type { TrainRunOptions } from './run-options.js';
import { Trainer, type TrainerConfig, type TrainResult } from './trainer.js';

export interface FinetuneOptions extends TrainRunOptions {
  model: CausalLM;
  train: PackedSequences;
  eval?: PackedSequences | null;
  /** What to write at the end (default 'trainable'). */
  save?: 'trainable' | 'full' | 'none';
  /** Storage dtype of final/model's float tensors (default F32; the recipe runner passes the base checkpoint's). */
  saveDtype?: FloatStorageDtype;
}

export interface FinetuneResult {
  runDir: string;
  /** RUN_DIR/final (null with save 'none', and when the run was stopped early: its checkpoint is the output). */
  outputDir: string | null;
  metricsPath: string;
  train: TrainResult;
  /** Eval loss before the first step (fresh runs only) and after the last. */
  evalBefore: EvalResult | null;
  evalAfter: EvalResult | null;
  trainer: Trainer;
}

export async function finetune(opts: FinetuneOptions): Promise<FinetuneResult> {
  fs.mkdirSync(opts.runDir, { recursive: true });
  const config: TrainerConfig = { ...opts.trainer, trainable: opts.trainer.trainable ?? ['current'] };
  const evalSet = opts.eval ? { packed: opts.eval, batchSize: opts.evalBatchSize ?? 8, maxBatches: opts.evalMaxBatches ?? null } : null;
  const trainer = new Trainer({
    model: opts.model,
    runDir: opts.runDir,
    train: packedBatchSource(opts.train, { batchSize: opts.batchSize, seed: opts.dataSeed ?? config.seed ?? 0 }),
    eval: evalSet,
    auxLosses: opts.auxLosses,
    config,
    progress: opts.progress,
    extra: opts.extra ?? null,
  });
  opts.onTrainer?.(trainer);
  const resumed = opts.resume ? trainer.resume() : null;
  const evalBefore = evalSet && resumed === null ? evaluateLoss(opts.model, evalSet, trainer.config.seed) : null;
  const train = await trainer.run();
  const evalAfter = train.lastEval;
  let outputDir: string | null = null;
  const save = opts.save ?? 'trainable';
  // Ctrl-C (stopped before the last step): the checkpoint is the output, not a final/ that looks finished
  if (save !== 'none' && !train.stopped) {
    outputDir = path.join(opts.runDir, 'final');
    if (save === 'trainable') {
      fs.mkdirSync(outputDir, { recursive: true });
      writeSafetensors(path.join(outputDir, 'trainable.safetensors'),
        [...trainer.params].map(([name, t]) => ({ name, dtype: 'F32' as const, shape: t.shape, data: t.f as Float32Array })), { format: 'pt' });
      writeJsonAtomic(path.join(outputDir, 'trainable.json'), {
        step: train.step, parameters: [...trainer.params.keys()], evalBefore: evalBefore?.loss ?? null, evalAfter: evalAfter?.loss ?? null,
      });
    } else if (nf4Sites(opts.model).length > 0) await saveQuantizedModel(opts.model, path.join(outputDir, 'model'), { force: true, dtype: opts.saveDtype });
    else await saveModel(opts.model, path.join(outputDir, 'model'), { force: true, dtype: opts.saveDtype });
  }
  return { runDir: opts.runDir, outputDir, metricsPath: train.metricsPath, train, evalBefore, evalAfter, trainer };
}

export interface PackFilesOptions {
  files: readonly string[];
  tokenizer: MoeTokenizer;
  seqLen: number;
  /** Token cache file (e.g. RUN_DIR/data-cache/train.tokens). */
  cachePath?: string | null;
  skipBadLines?: boolean;
  /** Hold out every k-th document for evaluation (0: none; default 0). */
  evalEvery?: number;
}

/** Files -> tokenised documents (cached) -> packed train (and eval) sequences. */
export async function packFiles(opts: PackFilesOptions): Promise<{ train: PackedSequences; eval: PackedSequences | null; skippedLines: number }> {
  const eos = opts.tokenizer.eosId;
  if (eos === null) throw new Error('packFiles: the tokenizer has no EOS token (needed between packed documents)');
  const ds = await loadTokenizedDataset({ files: opts.files, tokenizer: opts.tokenizer, cachePath: opts.cachePath ?? null, skipBadLines: opts.skipBadLines });
  const every = opts.evalEvery ?? 0;
  const train: TokenizedDocument[] = [];
  const held: TokenizedDocument[] = [];
  ds.documents.forEach((d, i) => (every > 1 && i % every === every - 1 ? held : train).push(d));
  const pack = (docs: TokenizedDocument[]): PackedSequences => packDocuments(docs, { seqLen: opts.seqLen, eosId: eos });
  return { train: pack(train), eval: held.length > 0 ? pack(held) : null, skippedLines: ds.skippedLines };
}
