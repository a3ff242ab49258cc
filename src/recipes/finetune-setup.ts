/**
 * What a fine-tuning recipe prepares before any training step, shared by `moe-tune train`
 * (run-finetune.ts) and `moe-tune export-job` (export-job.ts), so both engines see the same data
 * and start from the same weights: the base model source, the tokenizer, the packed train and
 * held-out sequences (prepareFinetune), and per seed the model with the recipe's surgery passes,
 * LoRA and router applied (buildFinetuneModel). prepareFinetune starts with the preflight
 * (preflight.ts): the recipe checked against the model's headers before any weight is read.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadBrownCorpus } from '../data/brown-corpus.js';
import { byteLevelTokenizerConfig, trainByteLevelBpe } from '../data/bpe-trainer.js';
import type { TokenizedDocument } from '../data/documents.js';
import { loadTokenizedDataset } from '../data/load-dataset.js';
import { packDocuments, type PackedSequences } from '../data/packing.js';
import { resolveChatTemplate } from '../data/chat-templates.js';
import type { TokenIdsOnly } from '../data/jsonl-dataset.js';
import { MoeTokenizer } from '../data/tokenizer.js';
import { requireModelDir } from '../io/index.js';
import type { CausalLM } from '../models/causal-lm.js';
import { createModel } from '../models/create.js';
import { loadModel, loadModelConfig } from '../models/load.js';
import { isQuantizedModelDir, loadModelQuantized, quantizeModel } from '../quant/index.js';
import { Tensor } from '../tensor/index.js';
import { writeBrownSamplesJsonl } from './brown-samples.js';
import { adaptBase, adaptLora } from './adapt-model.js';
import { preflightFinetune } from './preflight.js';
import type { ResolvedRecipe } from './load-recipe.js';
import type { Recipe } from './schema.js';

export interface FinetuneSetupOptions {
  /** Where the tokenizer trained for a tiny recipe, the Brown samples and the token cache go. */
  runDir: string;
  /** The base model directory (wins over the recipe's base_model). */
  modelDir?: string | null;
  /** Data files (win over the recipe's data). */
  dataFiles?: readonly string[] | null;
}

/** Where the base model comes from. */
export type BaseSource = { kind: 'dir'; dir: string } | { kind: 'random'; config: Record<string, unknown> };

function baseOf(r: Recipe, modelDir: string | null | undefined): BaseSource {
  const dir = modelDir ?? r.base_model;
  if (dir) {
    if (!fs.existsSync(dir)) {
      throw new Error(modelDir
        ? `${dir}: model directory not found`
        : `base_model ${dir}: not a local directory (moe-tune train pulls Hub ids; in the library, pass modelDir)`);
    }
    requireModelDir(dir);
    return { kind: 'dir', dir };
  }
  if (r.model) return { kind: 'random', config: r.model.config };
  throw new Error('the recipe names no base_model and no model.config: pass --model DIR');
}

function trainedTokenizer(r: Recipe, runDir: string, log: (l: string) => void): MoeTokenizer {
  const dir = path.join(runDir, 'tokenizer');
  if (fs.existsSync(path.join(dir, 'tokenizer.json'))) return MoeTokenizer.fromDir(dir);
  const docs = loadBrownCorpus().train.slice(0, r.data.max_docs ?? 20);
  log(`training a byte-level BPE tokenizer (vocabulary ${r.tokenizer.vocab_size}) on ${docs.length} Brown documents`);
  const json = trainByteLevelBpe(docs.map((d) => d.text), { vocabSize: r.tokenizer.vocab_size, minFrequency: r.tokenizer.min_frequency });
  const tok = MoeTokenizer.fromJson(json, byteLevelTokenizerConfig());
  tok.save(dir);
  return tok;
}

/**
 * The recipe's tokenizer: tokenizer.dir, else the base model's, else (tiny, no base) one trained on
 * Brown; tokenizer.chat_template (--chat-template) replaces its template. Null when the base
 * directory has no tokenizer.json: token-id data needs none (EOS then comes from config.json,
 * tokenIdsSetup).
 */
function tokenizerOf(r: Recipe, base: BaseSource, runDir: string, log: (l: string) => void): MoeTokenizer | null {
  if (!r.tokenizer.dir && base.kind === 'dir' && !fs.existsSync(path.join(base.dir, 'tokenizer.json'))) {
    if (r.tokenizer.chat_template) throw new Error(`tokenizer.chat_template: ${path.join(base.dir, 'tokenizer.json')} not found (a chat template needs the model's tokenizer; set tokenizer.dir)`);
    return null;
  }
  const tok = r.tokenizer.dir ? MoeTokenizer.fromDir(r.tokenizer.dir)
    : base.kind === 'dir' ? MoeTokenizer.fromDir(base.dir)
      : trainedTokenizer(r, runDir, log);
  return r.tokenizer.chat_template ? tok.withChatTemplate(resolveChatTemplate(r.tokenizer.chat_template)) : tok;
}

/** EOS (between packed documents) and the vocabulary of a base directory without a tokenizer, from its config.json. */
function tokenIdsSetup(dir: string): { eos: number; source: TokenIdsOnly } {
  const config = loadModelConfig(dir);
  const eos = Array.isArray(config.eosTokenId) ? config.eosTokenId[0] : config.eosTokenId;
  if (eos === undefined || eos === null) {
    throw new Error(`${path.join(dir, 'config.json')}: eos_token_id is not set, and the directory has no tokenizer.json (packing token-id data needs an EOS id; set eos_token_id or tokenizer.dir)`);
  }
  return { eos, source: { idsOnly: true, vocabSize: config.vocabSize, source: dir } };
}

function dataFilesOf(r: Recipe, given: readonly string[] | null | undefined, runDir: string, log: (l: string) => void): string[] {
  if (given && given.length > 0) return [...given];
  if (r.data.source === 'files') {
    if (r.data.files.length === 0) throw new Error('data.files: data.source is files but no files are listed (pass --data FILE)');
    return [...r.data.files];
  }
  const file = path.join(runDir, 'data', 'brown-samples.jsonl');
  if (!fs.existsSync(file)) {
    const n = writeBrownSamplesJsonl(file, { words: r.data.sample_words, samples: r.data.samples, maxDocs: r.data.max_docs, skipDocs: r.data.skip_docs });
    log(`wrote ${n} Brown samples of about ${r.data.sample_words} words to ${file}`);
  }
  return [file];
}

export function loadBase(r: Recipe, base: BaseSource, tok: MoeTokenizer | null, seed: number): CausalLM {
  const q = r.quantization;
  const qopts = { doubleQuant: q.double_quant, blockSize: q.block_size, ...(q.skip ? { skip: q.skip } : {}) };
  if (base.kind === 'dir') {
    const config = loadModelConfig(base.dir);
    if (tok && tok.vocabSize > config.vocabSize) throw new Error(`${base.dir}: the tokenizer has ${tok.vocabSize} tokens, the model's vocab_size is ${config.vocabSize}`);
    // QLoRA with adapters only (the default trainable set): the frozen head and embeddings stay in the
    // checkpoint's bf16, as bitsandbytes / PEFT keep them (exact; half their float32 memory)
    const frozenHalf = r.lora !== null && r.train.trainable.length === 1 && r.train.trainable[0] === 'current';
    if (q.method === 'nf4' || isQuantizedModelDir(base.dir)) {
      return loadModelQuantized(base.dir, { ...qopts, ...(frozenHalf ? { bf16Frozen: ['lm_head', 'model.embed_tokens'] } : {}) }).model;
    }
    return loadModel(base.dir).model;
  }
  if (!tok) throw new Error('internal: a randomly initialised model needs a tokenizer');
  const cfg = { ...base.config, vocab_size: tok.vocabSize, bos_token_id: tok.bosId, eos_token_id: tok.eosId, pad_token_id: tok.padId };
  const init = r.model!.init;
  const model = createModel(cfg, { seed, ...(init.std !== undefined ? { std: init.std } : {}), ...(init.router_std !== undefined ? { routerStd: init.router_std } : {}) });
  if (q.method === 'nf4') quantizeModel(model, qopts);
  return model;
}

function firstBatch(p: PackedSequences, n: number): { ids: Tensor; targets: Tensor } {
  const B = Math.min(n, p.count);
  const len = B * p.seqLen;
  return { ids: new Tensor(p.inputIds.slice(0, len), [B, p.seqLen]), targets: new Tensor(p.labels.slice(0, len), [B, p.seqLen]) };
}

/** Everything checked and prepared before any training starts. */
export interface PreparedFinetune {
  base: BaseSource;
  /** Null: a base directory without tokenizer.json, trained on token ids. */
  tok: MoeTokenizer | null;
  train: PackedSequences;
  eval: PackedSequences | null;
  files: string[];
  skippedLines: number;
}

export async function prepareFinetune(resolved: ResolvedRecipe, o: FinetuneSetupOptions, log: (l: string) => void): Promise<PreparedFinetune> {
  const r = resolved.recipe;
  // before any weight (or data) is read: the recipe against the headers, the data files exist
  const pre = preflightFinetune(resolved, { modelDir: o.modelDir, dataFiles: o.dataFiles });
  if (pre.modelDir) log(`preflight: the recipe fits ${pre.modelDir} (${(pre.checkpointBytes / 1e9).toFixed(2)} GB of tensors), checked in ${pre.seconds.toFixed(2)} s`);
  const base = baseOf(r, o.modelDir);
  fs.mkdirSync(o.runDir, { recursive: true });
  const tok = tokenizerOf(r, base, o.runDir, log);
  const idsOnly = tok === null && base.kind === 'dir' ? tokenIdsSetup(base.dir) : null;
  const eos = tok ? tok.eosId : idsOnly!.eos;
  if (eos === null) throw new Error(`${tok?.source ?? 'the tokenizer'}: the tokenizer has no EOS token (needed between packed documents)`);
  if (idsOnly) log(`no tokenizer.json in ${idsOnly.source.source}: reading token ids, EOS ${eos} from config.json`);
  const files = dataFilesOf(r, o.dataFiles, o.runDir, log);
  const ds = await loadTokenizedDataset({
    files, tokenizer: tok ?? idsOnly!.source, cachePath: path.join(o.runDir, 'data-cache', 'train.tokens'), skipBadLines: r.data.skip_bad_lines,
    format: r.data.format, columns: r.data.columns, encodingErrors: r.data.encoding_errors,
  });
  const docs = r.data.samples ? ds.documents.slice(0, r.data.samples) : ds.documents;
  const every = r.eval.holdout_every;
  const trainDocs: TokenizedDocument[] = [];
  const held: TokenizedDocument[] = [];
  docs.forEach((d, i) => (every > 1 && i % every === every - 1 ? held : trainDocs).push(d));
  const train = packDocuments(trainDocs, { seqLen: r.train.seq_len, eosId: eos });
  const evalSet = held.length > 0 ? packDocuments(held, { seqLen: r.train.seq_len, eosId: eos }) : null;
  if (train.count < r.train.batch_size) {
    throw new Error(`${files.join(', ')}: ${docs.length} documents pack into ${train.count} training sequences of ${r.train.seq_len} tokens, fewer than train.batch_size ${r.train.batch_size}`);
  }
  return { base, tok, train, eval: evalSet && evalSet.count > 0 ? evalSet : null, files, skippedLines: ds.skippedLines };
}

export interface BuiltFinetuneModel {
  model: CausalLM;
  surgeryReport: string[];
}

export interface BuildModelHooks {
  /** Called after the surgery passes and the router, before LoRA wraps any linear (export-job saves the base here). */
  beforeLora?: (model: CausalLM) => void | Promise<void>;
}

/**
 * The model of one seed: the base (4-bit when the recipe says so), the surgery passes (seeded, on
 * the first held-out batch), the router, then LoRA (seeded).
 */
export async function buildFinetuneModel(resolved: ResolvedRecipe, p: PreparedFinetune, seed: number, log: (l: string) => void,
  hooks: BuildModelHooks = {}): Promise<BuiltFinetuneModel> {
  const r = resolved.recipe;
  const model = loadBase(r, p.base, p.tok, seed);
  // the same functions run on the preflight skeleton (preflight.ts)
  const surgeryReport = adaptBase(model, resolved, { seed, ...(p.eval ? { batch: firstBatch(p.eval, 4) } : {}) });
  for (const line of surgeryReport) log(`surgery: ${line}`);
  await hooks.beforeLora?.(model);
  const lora = adaptLora(model, resolved, { seed });
  if (lora) log(lora);
  return { model, surgeryReport };
}
