/**
 * The issue-8 demo: pretrain a tiny MoE from scratch on the embedded Brown corpus for a fixed
 * training-time budget (default 2 minutes) and compare its validation perplexity with an add-one
 * unigram model's on the same held-out targets (Brown's fixed split: every 20th document).
 *
 *   npx tsx bench/pretrain-brown.ts [--budget SECONDS] [--out RUN_DIR]
 *
 * The step count is calibrated first (a few timed steps of the same model on random ids), so the
 * warmup (10% of steps) + cosine decay (to 10% of the peak) schedule fits the budget; the run also
 * stops at the budget whatever the calibration said. Tokenizer training and tokenisation (cached
 * in RUN_DIR) and the final evaluation are not counted in the budget.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createWeightedAuxLoss } from '../src/losses/registry.js';
import { createModel } from '../src/models/create.js';
import { getBackend, Rng } from '../src/tensor/index.js';
import { createProgress } from '../src/train/progress.js';
import { pretrain, type PretrainMetrics } from '../src/train/pretrain.js';
import { Trainer } from '../src/train/trainer.js';

export interface PretrainBrownOptions {
  budgetS?: number;
  runDir?: string;
  vocabSize?: number;
  seqLen?: number;
  batchSize?: number;
  lr?: number;
  /** config.json-style model (vocab_size is set from the tokenizer). */
  model?: Record<string, unknown>;
  quiet?: boolean;
}

export const BROWN_MOE: Record<string, unknown> = {
  architectures: ['MixtralForCausalLM'], model_type: 'mixtral', hidden_size: 128, intermediate_size: 256,
  num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, rms_norm_eps: 1e-5, rope_theta: 10000,
  max_position_embeddings: 512, tie_word_embeddings: false, hidden_act: 'silu', num_local_experts: 8,
  num_experts_per_tok: 2, router_aux_loss_coef: 0.01, sliding_window: null,
};

/** Seconds per optimizer step of this model and batch shape (median of timed steps on random ids). */
export function calibrateStepSeconds(model: Record<string, unknown>, vocab: number, seqLen: number, batchSize: number, lr: number): number {
  const m = createModel({ ...model, vocab_size: vocab }, { seed: 1, std: 0.02 });
  const rng = new Rng(3);
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'brown-calib-'));
  const t = new Trainer({
    model: m, runDir,
    train: {
      batchesPerEpoch: null, state: () => null, restore: () => {},
      next: () => {
        const ids = Int32Array.from({ length: batchSize * seqLen }, () => 3 + rng.int(vocab - 3));
        return { batchSize, seqLen, inputIds: ids, labels: ids.map((_, i) => ((i + 1) % seqLen === 0 ? -100 : ids[i + 1]!)) };
      },
    },
    config: { steps: 100, lr },
  });
  const times: number[] = [];
  for (let i = 0; i < 7; i++) {
    const a = performance.now();
    t.trainStep();
    if (i >= 2) times.push((performance.now() - a) / 1000);
  }
  fs.rmSync(runDir, { recursive: true, force: true });
  return times.sort((x, y) => x - y)[Math.floor(times.length / 2)]!;
}

export async function runPretrainBrown(opts: PretrainBrownOptions = {}): Promise<PretrainMetrics & { runDir: string; calibratedSteps: number; backend: string }> {
  const budgetS = opts.budgetS ?? 120;
  const vocab = opts.vocabSize ?? 2048;
  const seqLen = opts.seqLen ?? 128;
  const batchSize = opts.batchSize ?? 8;
  const lr = opts.lr ?? 3e-3;
  const model = opts.model ?? BROWN_MOE;
  const runDir = opts.runDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'brown-pretrain-'));
  const perStep = calibrateStepSeconds(model, vocab, seqLen, batchSize, lr);
  const steps = Math.max(10, Math.floor((0.97 * budgetS) / perStep));
  const res = await pretrain({
    runDir,
    model,
    init: { seed: 1, std: 0.02 },
    tokenizer: { vocabSize: vocab },
    corpus: { kind: 'brown' },
    seqLen,
    batchSize,
    trainer: { steps, lr, warmupRatio: 0.1, minLrRatio: 0.1, beta1: 0.9, beta2: 0.95, weightDecay: 0.1, clipGradNorm: 1, seed: 1, evalEvery: 0, checkpointEvery: 0 },
    auxLosses: [createWeightedAuxLoss({ name: 'balance', weight: 0.01 })],
    evalBatchSize: 16,
    timeBudgetS: budgetS,
    progress: opts.quiet ? undefined : createProgress({ every: Math.max(1, Math.floor(steps / 20)) }),
  });
  return { ...res.metrics, runDir, calibratedSteps: steps, backend: getBackend().name };
}

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const args = process.argv.slice(2);
  const val = (flag: string): string | undefined => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const r = await runPretrainBrown({ budgetS: val('--budget') ? Number(val('--budget')) : undefined, runDir: val('--out') });
  console.log(`Brown pretraining (${r.backend} backend): ${(r.parameters / 1e6).toFixed(2)}M-parameter MoE, ${r.steps} steps (${r.calibratedSteps} planned) in ${r.trainSeconds.toFixed(0)} s of training, ${r.tokensPerS.toFixed(0)} tokens/s`);
  console.log(`validation perplexity ${r.valPpl.toFixed(1)} vs unigram ${r.unigramPpl.toFixed(1)} on the same ${r.valTokens} held-out tokens (vocabulary ${r.vocabSize}); run directory ${r.runDir}`);
}
