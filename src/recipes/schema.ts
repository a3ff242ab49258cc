/**
 * The one schema of a training recipe (YAML in recipes/, validated here). Every object is strict:
 * an unknown key is an error naming its path. A recipe describes one paper setting: the model (a
 * base checkpoint to fine-tune, or a config to pretrain from scratch), the surgery passes,
 * quantisation, LoRA, the router, auxiliary losses with weight schedules, optimizer, learning-rate
 * schedule, batch / sequence length, steps or epochs, evaluation, seeds, data and tokenizer.
 *
 * Two keys are not part of the resolved recipe: `extends` (a parent recipe file, deep-merged under
 * this one) and `tiny` (a deep-partial override block giving the variant that runs on a laptop in
 * about a minute). See load-recipe.ts.
 */
import { COLUMN_TARGETS, DATA_FORMATS } from '../data/record-format.js';
import { ENCODING_ERRORS } from '../io/utf8.js';
import { z } from 'zod';

const posInt = z.number().int().positive();
const nonNegInt = z.number().int().nonnegative();

/** An auxiliary-loss weight: a constant or a schedule (src/losses/schedule.ts). */
export const WeightScheduleSchema = z.union([
  z.number().nonnegative(),
  z.discriminatedUnion('type', [
    z.strictObject({ type: z.literal('constant'), value: z.number().nonnegative() }),
    z.strictObject({ type: z.literal('per-epoch'), values: z.array(z.number().nonnegative()).min(1) }),
    z.strictObject({ type: z.literal('linear'), from: z.number().nonnegative(), to: z.number().nonnegative() }),
    z.strictObject({ type: z.literal('cosine'), from: z.number().nonnegative(), to: z.number().nonnegative() }),
  ]),
]);

/** One auxiliary loss: its registry name, weight, and the loss's own options (checked by the registry). */
export const AuxLossSchema = z.strictObject({
  name: z.string().min(1),
  weight: WeightScheduleSchema.default(1),
  /** balance / adamoe-balance: the form of the loss. */
  form: z.string().optional(),
  /** topp-balance: tokens per sequence M; tcmoe-balance: the paper's T (per-sequence loss; default the whole batch). */
  sequence_length: posInt.optional(),
  /** adamoe-balance: averaged (the paper's prose, default) or separate (the authors' code's effective loss). */
  null_group: z.enum(['averaged', 'separate']).optional(),
});

export const ModelSectionSchema = z.strictObject({
  /** config.json-style object (architectures, sizes, moe_tune keys); vocab_size comes from the tokenizer. */
  config: z.record(z.string(), z.unknown()),
  /** Initialisation: N(0, std^2) (default: the config's initializer_range, else 0.02), router rows std. */
  init: z.strictObject({
    std: z.number().positive().optional(),
    router_std: z.number().positive().optional(),
  }).default({}),
});

export const TokenizerSchema = z.strictObject({
  /** An existing tokenizer directory (tokenizer.json); default: the base model's, else a BPE trained on the data. */
  dir: z.string().nullable().default(null),
  /** Vocabulary of the byte-level BPE trained when no tokenizer is given. */
  vocab_size: posInt.default(4096),
  min_frequency: posInt.default(2),
  /** A chat template (a Jinja file or chatml / llama-2 / zephyr) for chat data when the tokenizer has none (train --chat-template). */
  chat_template: z.string().min(1).nullable().default(null),
});

export const QuantizationSchema = z.strictObject({
  /** none, or nf4 (QLoRA: 4-bit NormalFloat base weights, adapters in float). */
  method: z.enum(['none', 'nf4']).default('none'),
  double_quant: z.boolean().default(true),
  block_size: posInt.default(64),
  /** Linears never quantised (module names or path suffixes; default: gate, gate2, lm_head, embed_tokens, router). */
  skip: z.array(z.string()).optional(),
});

export const LoraSchema = z.strictObject({
  r: posInt,
  alpha: z.number().positive(),
  dropout: z.number().min(0).lt(1).default(0),
  /** Module names / path suffixes (PEFT target_modules rules), or ['all-linear']. */
  targets: z.array(z.string().min(1)).min(1),
  exclude: z.array(z.string()).optional(),
  rslora: z.boolean().default(false),
});

export const OptimizerSchema = z.strictObject({
  name: z.literal('adamw').default('adamw'),
  beta1: z.number().min(0).lt(1).default(0.9),
  beta2: z.number().min(0).lt(1).default(0.95),
  eps: z.number().positive().default(1e-8),
  weight_decay: z.number().nonnegative().default(0.1),
  /** Global-norm clipping threshold, or null for none. */
  clip_grad_norm: z.number().positive().nullable().default(1),
});

export const LrScheduleSchema = z.strictObject({
  /** Linear warmup then cosine decay to min_lr_ratio * peak (SPEC §6). */
  type: z.literal('cosine').default('cosine'),
  warmup_steps: nonNegInt.optional(),
  warmup_ratio: z.number().min(0).max(1).default(0.1),
  min_lr_ratio: z.number().min(0).max(1).default(0.1),
});

export const TrainSchema = z.strictObject({
  lr: z.number().positive(),
  batch_size: posInt,
  grad_accum: posInt.default(1),
  seq_len: posInt,
  /** Optimizer steps (pretraining), or ... */
  steps: posInt.nullish(),
  /** ... passes over the training data (fine-tuning). */
  epochs: z.number().positive().nullish(),
  /** Trainable presets / regexes (src/train/trainable.ts); default: what surgery and LoRA left trainable. */
  trainable: z.array(z.string()).default(['current']),
  frozen: z.array(z.string()).optional(),
  checkpoint_every: nonNegInt.default(0),
  keep_checkpoints: posInt.default(3),
  /**
   * Activation checkpointing: each decoder layer keeps only its output and is recomputed in the backward
   * (transformers' gradient_checkpointing; results identical, about one more forward of compute).
   */
  gradient_checkpointing: z.boolean().default(false),
  /** Stop (with a checkpoint) after this many seconds of training. */
  time_budget_s: z.number().positive().nullable().default(null),
});

export const EvalSchema = z.strictObject({
  /** Evaluate every N steps (0: at the end only). */
  every: nonNegInt.default(0),
  batch_size: posInt.default(8),
  /** Evaluation batches (null: all). */
  max_batches: posInt.nullable().default(null),
  /** Fine-tuning: every k-th document is held out for evaluation (0: no held-out set). */
  holdout_every: nonNegInt.default(10),
  /** Router ranges swept after training (moe-tune sweep syntax, e.g. top-p:p=0.1..0.9:0.2). */
  sweep: z.array(z.string().min(1)).default([]),
});

export const DataSchema = z.strictObject({
  /** brown: the embedded Brown corpus; files: the files below (train --data sets them). */
  source: z.enum(['brown', 'files']).default('brown'),
  files: z.array(z.string()).default([]),
  /** Pretraining on files: validation files (default: every 20th document held out). */
  validation: z.array(z.string()).default([]),
  /** Plain-text files: how they are cut into documents. */
  split: z.enum(['file', 'paragraph', 'line']).default('paragraph'),
  /** Brown: only the first N training documents. */
  max_docs: posInt.nullable().default(null),
  /** Fine-tuning on Brown: skip the first N training documents (e.g. those a model was pretrained on). */
  skip_docs: nonNegInt.default(0),
  /** Fine-tuning on Brown: documents are cut into samples of this many words (written as a JSONL in the run). */
  sample_words: posInt.default(48),
  /** Use only the first N samples / documents (AdaMoE: 1000). */
  samples: posInt.nullable().default(null),
  skip_bad_lines: z.boolean().default(false),
  /** Record files: auto (by each line's fields), or one of text, prompt_completion, messages, input_ids, alpaca, sharegpt. */
  format: z.enum(DATA_FORMATS).default('auto'),
  /** Record files: our field -> the file's column, e.g. {prompt: question, completion: answer}. */
  columns: z.partialRecord(z.enum(COLUMN_TARGETS), z.string().min(1)).default({}),
  /** Bytes that are not UTF-8: strict (an error naming file and line) or replace (U+FFFD, as Python's errors="replace"). */
  encoding_errors: z.enum(ENCODING_ERRORS).default('strict'),
});

export const RecipeSchema = z.strictObject({
  name: z.string().min(1),
  /** The paper and section the setting comes from. */
  paper: z.string().min(1),
  description: z.string().default(''),
  /** pretrain: from scratch (moe-tune pretrain); finetune: from a base model (moe-tune train). */
  kind: z.enum(['pretrain', 'finetune']),
  /** Fine-tuning: the base checkpoint, a Hugging Face repo id or a local directory (`train --model` wins). */
  base_model: z.string().min(1).nullable().default(null),
  /** Pretraining (or a tiny fine-tune without a base): the model to build. */
  model: ModelSectionSchema.nullable().default(null),
  tokenizer: TokenizerSchema.default(TokenizerSchema.parse({})),
  /** Surgery passes in order (NAME:key=value,... as for moe-tune surgery). */
  surgery: z.array(z.string().min(1)).default([]),
  quantization: QuantizationSchema.default(QuantizationSchema.parse({})),
  /** LoRA on target linears, applied after quantisation and surgery (null: none). */
  lora: LoraSchema.nullable().default(null),
  /** Router of every MoE layer (NAME:key=value,...; null: the model's own). */
  router: z.string().min(1).nullable().default(null),
  aux_losses: z.array(AuxLossSchema).default([]),
  optimizer: OptimizerSchema.default(OptimizerSchema.parse({})),
  lr_schedule: LrScheduleSchema.default(LrScheduleSchema.parse({})),
  train: TrainSchema,
  eval: EvalSchema.default(EvalSchema.parse({})),
  /** One run per seed (model init, LoRA init, data order, dropout); several seeds run one after another. */
  seeds: z.array(nonNegInt).min(1).default([0]),
  data: DataSchema.default(DataSchema.parse({})),
}).superRefine((r, ctx) => {
  if (r.train.steps == null && r.train.epochs == null) {
    ctx.addIssue({ code: 'custom', path: ['train', 'steps'], message: 'set train.steps or train.epochs' });
  }
  if (r.train.steps != null && r.train.epochs != null) {
    ctx.addIssue({ code: 'custom', path: ['train', 'epochs'], message: 'set train.steps or train.epochs, not both' });
  }
  if (r.kind === 'pretrain') {
    if (r.model === null) ctx.addIssue({ code: 'custom', path: ['model'], message: 'a pretrain recipe needs model.config' });
    if (r.train.epochs != null) ctx.addIssue({ code: 'custom', path: ['train', 'epochs'], message: 'pretraining counts train.steps, not epochs' });
    if (r.base_model !== null) ctx.addIssue({ code: 'custom', path: ['base_model'], message: 'a pretrain recipe builds its model from model.config; base_model is for kind: finetune' });
  }
  if (new Set(r.seeds).size !== r.seeds.length) ctx.addIssue({ code: 'custom', path: ['seeds'], message: 'seeds must be distinct' });
});

export type Recipe = z.infer<typeof RecipeSchema>;
export type AuxLossEntry = z.infer<typeof AuxLossSchema>;

/** Keys of a recipe file that are not part of the resolved recipe. */
export const RECIPE_META_KEYS = ['extends', 'tiny'] as const;
