/**
 * Pretraining from scratch: a MoE or dense decoder of any size built from a config object, on a
 * text corpus (default: the embedded Brown corpus with its fixed validation split), with a
 * byte-level BPE tokenizer trained on the training split when none is given, and the same Trainer
 * as fine-tuning. Reports validation perplexity next to a unigram model's on the same targets.
 *
 * RUN_DIR layout: tokenizer/ (trained or copied), data-cache/{train,validation}.tokens (token
 * cache), metrics.jsonl, checkpoints/, trainer-config.json, model/ (final model in Hugging Face
 * layout with its tokenizer), summary.json.
 *
 * Initialisation follows the config: transformers-style N(0, std^2) with std = init.std or the
 * config's initializer_range (TC-MoE: 0.006, router rows too), norms 1, TC-MoE router bias
 * 0 / -1 / -10 for E^1 / E^-1 / E^0 (src/models/init.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadBrownCorpus } from '../data/brown-corpus.js';
import { byteLevelTokenizerConfig, trainByteLevelBpe } from '../data/bpe-trainer.js';
import type { TextDocument, TokenizedDocument } from '../data/documents.js';
import { packDocuments, type PackedSequences } from '../data/packing.js';
import { readTextDocuments, tokenizeTexts } from '../data/text-dataset.js';
import { loadOrBuildTokenCache, stampSources } from '../data/token-cache.js';
import { MoeTokenizer } from '../data/tokenizer.js';
import { writeJsonAtomic } from '../io/index.js';
import type { CausalLM } from '../models/causal-lm.js';
import { createModel } from '../models/create.js';
import { saveModel } from '../models/save.js';
import { packedBatchSource } from './data-source.js';
import { evaluateLoss, type EvalResult } from './evaluate.js';
import type { ProgressSink } from './progress.js';
import type { TrainRunOptions } from './run-options.js';
import { Trainer, type TrainResult } from './trainer.js';
import { unigramBaseline, type UnigramResult } from './unigram.js';

export type PretrainCorpus =
  | { kind: 'brown'; /** Use only the first N training documents (quick runs). */ maxTrainDocs?: number }
  | { kind: 'files'; train: string[]; validation?: string[]; /** Without validation files: every k-th document (default 20) is held out. */ validationEvery?: number; split?: 'file' | 'paragraph' | 'line' };

export interface PretrainOptions extends TrainRunOptions {
  /** A config.json-style object (architectures, sizes, moe_tune keys); vocab_size and BOS/EOS ids come from the tokenizer. */
  model: Record<string, unknown>;
  init?: { seed?: number; std?: number; routerStd?: number };
  /** An existing tokenizer directory, or the size of the BPE vocabulary to train (default 4096). */
  tokenizer?: { dir?: string | null; vocabSize?: number; minFrequency?: number };
  corpus?: PretrainCorpus;
  seqLen: number;
  /** Stop (with a checkpoint) once this many seconds of training have passed. */
  timeBudgetS?: number | null;
}

export interface PretrainMetrics {
  steps: number;
  stopped: boolean;
  /**
   * Stopped by Ctrl-C / SIGTERM (not by the time budget): only the checkpoint is written, no model/;
   * summary.json says so. Continue with --resume.
   */
  interrupted: boolean;
  firstLoss: number | null;
  lastLoss: number | null;
  valLoss: number;
  valPpl: number;
  valTokens: number;
  unigramPpl: number;
  unigramLoss: number;
  trainTargets: number;
  vocabSize: number;
  parameters: number;
  trainSeconds: number;
  tokensPerS: number;
  load: number | null;
}

export interface PretrainResult {
  runDir: string;
  modelDir: string;
  metricsPath: string;
  metrics: PretrainMetrics;
  model: CausalLM;
  tokenizer: MoeTokenizer;
  train: TrainResult;
}

interface CorpusTexts {
  train: TextDocument[];
  validation: TextDocument[];
  /** What identifies the corpus in the token cache key. */
  id: Record<string, unknown>;
  sources: string[];
}

function corpusTexts(c: PretrainCorpus): CorpusTexts {
  if (c.kind === 'brown') {
    const s = loadBrownCorpus();
    const train = c.maxTrainDocs ? s.train.slice(0, c.maxTrainDocs) : s.train;
    return { train, validation: s.validation, id: { corpus: 'brown', maxTrainDocs: c.maxTrainDocs ?? null }, sources: [] };
  }
  if (c.train.length === 0) throw new Error('pretrain: corpus.train lists no files');
  const split = c.split ?? 'paragraph';
  const docs = readTextDocuments(c.train, split);
  if (c.validation && c.validation.length > 0) {
    return { train: docs, validation: readTextDocuments(c.validation, split), id: { corpus: 'files', split }, sources: [...c.train, ...c.validation] };
  }
  const every = c.validationEvery ?? 20;
  if (!Number.isInteger(every) || every < 2) throw new Error(`pretrain: corpus.validationEvery must be an integer >= 2, got ${every}`);
  const train: TextDocument[] = [];
  const validation: TextDocument[] = [];
  docs.forEach((d, i) => (i % every === every - 1 ? validation : train).push(d));
  if (validation.length === 0) throw new Error(`pretrain: ${c.train.join(', ')}: fewer than ${every} documents, nothing to hold out for validation (pass corpus.validation files)`);
  return { train, validation, id: { corpus: 'files', split, every }, sources: c.train };
}

function resolveTokenizer(opts: PretrainOptions, texts: CorpusTexts, progress: ProgressSink | undefined): MoeTokenizer {
  const runTok = path.join(opts.runDir, 'tokenizer');
  if (opts.tokenizer?.dir) {
    const tok = MoeTokenizer.fromDir(opts.tokenizer.dir);
    tok.save(runTok);
    return tok;
  }
  if (fs.existsSync(path.join(runTok, 'tokenizer.json'))) return MoeTokenizer.fromDir(runTok);
  const vocabSize = opts.tokenizer?.vocabSize ?? 4096;
  progress?.message(`training a byte-level BPE tokenizer (vocabulary ${vocabSize}) on ${texts.train.length} documents`);
  const json = trainByteLevelBpe(texts.train.map((d) => d.text), { vocabSize, minFrequency: opts.tokenizer?.minFrequency ?? 2 });
  const tok = MoeTokenizer.fromJson(json, byteLevelTokenizerConfig());
  tok.save(runTok);
  return tok;
}

async function tokenized(opts: PretrainOptions, texts: CorpusTexts, tok: MoeTokenizer, split: 'train' | 'validation'): Promise<TokenizedDocument[]> {
  const cachePath = path.join(opts.runDir, 'data-cache', `${split}.tokens`);
  const r = await loadOrBuildTokenCache(cachePath, {
    sources: stampSources(texts.sources),
    tokenizerHash: tok.hash,
    options: { ...texts.id, split, addBos: false },
  }, async () => ({ documents: tokenizeTexts(texts[split], tok, { addBos: false }), meta: {} }));
  return r.documents;
}

/** Packs, trains and evaluates; see the file comment. */
export async function pretrain(opts: PretrainOptions): Promise<PretrainResult> {
  fs.mkdirSync(opts.runDir, { recursive: true });
  const progress = opts.progress;
  const texts = corpusTexts(opts.corpus ?? { kind: 'brown' });
  const tok = resolveTokenizer(opts, texts, progress);
  const eos = tok.eosId;
  if (eos === null) throw new Error(`pretrain: the tokenizer has no EOS token (needed between packed documents)`);
  const trainPacked = packDocuments(await tokenized(opts, texts, tok, 'train'), { seqLen: opts.seqLen, eosId: eos });
  const valPacked = packDocuments(await tokenized(opts, texts, tok, 'validation'), { seqLen: opts.seqLen, eosId: eos });
  if (valPacked.count === 0) throw new Error(`pretrain: the validation split holds less than one sequence of ${opts.seqLen} tokens`);

  const modelConfig: Record<string, unknown> = {
    ...opts.model, vocab_size: tok.vocabSize, bos_token_id: tok.bosId, eos_token_id: eos, pad_token_id: tok.padId,
  };
  if (modelConfig['max_position_embeddings'] === undefined) modelConfig['max_position_embeddings'] = Math.max(opts.seqLen, 128);
  const seed = opts.init?.seed ?? opts.trainer.seed ?? 0;
  const model = createModel(modelConfig, { seed, std: opts.init?.std, routerStd: opts.init?.routerStd });
  const parameters = [...new Set(model.namedParameters().map(([, t]) => t))].reduce((a, t) => a + t.size, 0);

  let budgetReached = false;
  const trainer = new Trainer({
    model,
    runDir: opts.runDir,
    train: packedBatchSource(trainPacked, { batchSize: opts.batchSize, seed: opts.dataSeed ?? opts.trainer.seed ?? 0 }),
    eval: { packed: valPacked, batchSize: opts.evalBatchSize ?? 8, maxBatches: opts.evalMaxBatches ?? null },
    auxLosses: opts.auxLosses,
    config: opts.trainer,
    progress,
    extra: { pretrain: { model: modelConfig, seqLen: opts.seqLen, batchSize: opts.batchSize, corpus: texts.id }, recipe: opts.extra ?? null },
    hooks: opts.timeBudgetS ? { afterStep: (m, t) => { if (m.elapsed_s >= opts.timeBudgetS!) { budgetReached = true; t.requestStop(); } } } : undefined,
  });
  opts.onTrainer?.(trainer);
  if (opts.resume) {
    const step = trainer.resume();
    if (step !== null) progress?.message(`resumed from step ${step}`);
  }
  progress?.message(`pretraining ${model.config.architecture} (${(parameters / 1e6).toFixed(2)}M parameters) on ${trainPacked.count} sequences of ${opts.seqLen} tokens; validation ${valPacked.count} sequences`);
  const trained = await trainer.run();

  // the final validation: the same sequences as during training (all unless evalMaxBatches), and
  // the unigram baseline on exactly those targets
  const evalB = opts.evalBatchSize ?? 8;
  const val: EvalResult = evaluateLoss(model, { packed: valPacked, batchSize: evalB, maxBatches: opts.evalMaxBatches ?? null }, trainer.config.seed);
  const scoredSeqs = opts.evalMaxBatches == null ? valPacked.count : Math.min(valPacked.count, opts.evalMaxBatches * evalB);
  const uni: UnigramResult = unigramBaseline(trainPacked.labels, valPacked.labels.subarray(0, scoredSeqs * valPacked.seqLen), tok.vocabSize);
  if (uni.evalTokens !== val.tokens) throw new Error(`pretrain: internal error: unigram scored ${uni.evalTokens} targets, the model ${val.tokens}`);
  const modelDir = path.join(opts.runDir, 'model');
  // Ctrl-C: the checkpoint is the output; a final model/ would pass an unfinished run off as done
  const interrupted = trained.stopped && !budgetReached;
  if (!interrupted) await saveModel(model, modelDir, { force: true, tokenizer: tok });
  const metrics: PretrainMetrics = {
    steps: trained.step, stopped: trained.stopped, interrupted, firstLoss: trained.firstLoss, lastLoss: trained.lastLoss,
    valLoss: val.loss, valPpl: val.ppl, valTokens: val.tokens, unigramPpl: uni.ppl, unigramLoss: uni.loss,
    trainTargets: uni.trainTokens, vocabSize: tok.vocabSize, parameters,
    trainSeconds: trainer.elapsedSeconds, tokensPerS: trainer.elapsedSeconds > 0 ? trainer.tokensProcessed / trainer.elapsedSeconds : 0,
    load: val.load,
  };
  writeJsonAtomic(path.join(opts.runDir, 'summary.json'), {
    ...(interrupted ? { interrupted: true, checkpoint: trained.lastCheckpoint } : {}), metrics, model: modelConfig, recipe: opts.extra ?? null,
  });
  if (interrupted) progress?.message(`interrupted at step ${trained.step}: no model written; checkpoint ${trained.lastCheckpoint ?? '(none)'}; continue with --resume`);
  progress?.message(`validation perplexity ${val.ppl.toFixed(2)} (unigram ${uni.ppl.toFixed(2)}) after ${trained.step} steps`);
  return { runDir: opts.runDir, modelDir, metricsPath: trained.metricsPath, metrics, model, tokenizer: tok, train: trained };
}

export type { PackedSequences };
