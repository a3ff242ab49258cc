/**
 * A tiny, fully seeded training setup shared by the trainer tests and their child processes
 * (train-child.ts): a tiny Mixtral, a packed synthetic corpus with learnable structure, a balance
 * loss with a per-epoch weight, optionally LoRA with dropout (so the forward RNG matters).
 */
import { packDocuments, type PackedSequences } from '../../src/data/packing.js';
import { createWeightedAuxLoss } from '../../src/losses/registry.js';
import { applyLora } from '../../src/lora/index.js';
import type { CausalLM } from '../../src/models/causal-lm.js';
import { createModel } from '../../src/models/create.js';
import { Rng } from '../../src/tensor/index.js';
import { packedBatchSource } from '../../src/train/data-source.js';
import { Trainer, type TrainerConfig, type TrainerHooks } from '../../src/train/trainer.js';
import { tinyMixtralConfig } from './tiny-model.js';

/** Documents of arithmetic runs mod V (start, stride drawn from a seeded stream): easy to learn. */
export function tinyPacked(docs: number, seqLen: number, vocab = 96, seed = 1): PackedSequences {
  const rng = new Rng(seed);
  const out = [];
  for (let d = 0; d < docs; d++) {
    const len = 20 + rng.int(20);
    const start = 3 + rng.int(vocab - 3);
    const stride = 1 + rng.int(3);
    const ids = new Int32Array(len);
    for (let i = 0; i < len; i++) ids[i] = 3 + ((start + i * stride) % (vocab - 3));
    out.push({ ids, mask: new Uint8Array(len).fill(1) });
  }
  return packDocuments(out, { seqLen, eosId: 2 });
}

export interface TinyRun {
  runDir: string;
  steps: number;
  checkpointEvery?: number;
  keep?: number;
  lora?: boolean;
  batchSize?: number;
  accum?: number;
  hooks?: TrainerHooks;
  config?: Partial<TrainerConfig>;
  onWarning?: (line: string) => void;
}

export function tinyModelFor(run: Pick<TinyRun, 'lora'>): CausalLM {
  const model = createModel(tinyMixtralConfig(), { seed: 3, std: 0.05 });
  if (run.lora) applyLora(model, { targets: ['q_proj', 'v_proj', 'w1', 'w3'], r: 4, alpha: 8, dropout: 0.1, seed: 1 });
  return model;
}

export function makeTinyTrainer(run: TinyRun): { trainer: Trainer; model: CausalLM } {
  const model = tinyModelFor(run);
  const trainer = new Trainer({
    model,
    runDir: run.runDir,
    train: packedBatchSource(tinyPacked(40, 16), { batchSize: run.batchSize ?? 2, seed: 7 }),
    eval: { packed: tinyPacked(6, 16, 96, 99), batchSize: 4 },
    auxLosses: [createWeightedAuxLoss({ name: 'balance', weight: { type: 'per-epoch', values: [0.05, 0.01] } })],
    config: {
      steps: run.steps, lr: 3e-3, warmupSteps: 2, gradAccumSteps: run.accum ?? 1, checkpointEvery: run.checkpointEvery ?? 0,
      keepCheckpoints: run.keep ?? 3, evalEvery: 5, seed: 11, trainable: run.lora ? ['lora', 'routers'] : ['all'],
      ...run.config,
    },
    hooks: run.hooks,
    ...(run.onWarning ? { onWarning: run.onWarning } : {}),
  });
  return { trainer, model };
}

/** All parameters as plain arrays, by name (for bit-for-bit comparisons). */
export function snapshot(model: CausalLM): Map<string, number[]> {
  return new Map(model.namedParameters().map(([n, t]) => [n, Array.from(t.f)]));
}
