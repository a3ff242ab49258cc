/**
 * Training learns: a tiny MoE pretrained from scratch on a slice of the Brown corpus (BPE trained on
 * the slice, the library's pretrain()) lowers its loss and its validation loss; a TC-MoE model
 * pretrains with its ternary init and its two aux losses; an AdaMoE QLoRA fine-tune of the tiny
 * Mixtral fixture (4-bit base, null experts, LoRA on gate / gate2 / w1 / w2 / w3, annealed
 * balance loss) lowers its eval loss and moves the load from its step-0 value toward the target
 * set by the null experts.
 */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { applySurgery, nullExpertsPass, stepZeroTrueExperts } from '../src/adapters/index.js';
import { createWeightedAuxLoss } from '../src/losses/registry.js';
import { applyLora } from '../src/lora/index.js';
import { Linear } from '../src/models/linear.js';
import { loadModelQuantized, Nf4Linear } from '../src/quant/index.js';
import { finetune } from '../src/train/finetune.js';
import { readMetrics } from '../src/train/metrics.js';
import { pretrain } from '../src/train/pretrain.js';
import { FIXTURES } from './helpers/fixtures.js';
import { tinyPacked } from './helpers/train-setup.js';
import { tinyMixtralConfig } from './helpers/tiny-model.js';
import { makeTmpDir } from './helpers/tmpdir.js';

const tinyMoe = (over: Record<string, unknown> = {}): Record<string, unknown> => {
  const c = tinyMixtralConfig({ hidden_size: 48, intermediate_size: 64, num_attention_heads: 4, num_key_value_heads: 2, ...over });
  delete c['vocab_size'];
  return c;
};

describe('pretraining from scratch', () => {
  it('a tiny MoE on a Brown slice (BPE trained on it) lowers its training and validation loss', async () => {
    const runDir = makeTmpDir('pretrain');
    const res = await pretrain({
      runDir,
      model: tinyMoe(),
      init: { seed: 1, std: 0.02 },
      tokenizer: { vocabSize: 400 },
      corpus: { kind: 'brown', maxTrainDocs: 4 },
      seqLen: 32,
      batchSize: 2,
      trainer: { steps: 30, lr: 5e-3, warmupSteps: 3, evalEvery: 10, seed: 2, weightDecay: 0.1 },
      evalMaxBatches: 2,
      auxLosses: [createWeightedAuxLoss({ name: 'balance', weight: 0.01 })],
    });
    const ms = readMetrics(res.metricsPath);
    expect(ms).toHaveLength(30);
    const head = ms.slice(0, 3).reduce((a, m) => a + m.lm_loss, 0) / 3;
    const tail = ms.slice(-5).reduce((a, m) => a + m.lm_loss, 0) / 5;
    expect(head).toBeGreaterThan(Math.log(400) - 0.3); // starts near uniform
    expect(tail).toBeLessThan(head - 0.5);
    expect(ms[9]!.eval_loss).toBeGreaterThan(ms[29]!.eval_loss!);
    expect(res.metrics.valLoss).toBe(ms[29]!.eval_loss);
    expect(res.metrics.valTokens).toBe(2 * 8 * 32); // 2 eval batches of 8 sequences
    expect(res.metrics.vocabSize).toBe(400);
    expect(res.metrics.unigramPpl).toBeGreaterThan(50);
    expect(res.metrics.valPpl).toBeLessThan(400);
    expect(res.model.config.vocabSize).toBe(400);
  });

  it('TC-MoE: ternary router rows (std 0.006, bias 0/-1/-10) pretrain with the balance and reward losses', async () => {
    const runDir = makeTmpDir('pretrain-tc');
    const res = await pretrain({
      runDir,
      model: tinyMoe({ moe_tune: { ternary: { zero_experts: 2 } } }),
      init: { seed: 1, std: 0.006 },
      tokenizer: { vocabSize: 300 },
      corpus: { kind: 'brown', maxTrainDocs: 2 },
      seqLen: 32,
      batchSize: 2,
      trainer: { steps: 12, lr: 3e-3, warmupSteps: 2, seed: 2 },
      evalMaxBatches: 1,
      auxLosses: [createWeightedAuxLoss({ name: 'tcmoe-balance', weight: 0.01 }), createWeightedAuxLoss({ name: 'tcmoe-reward', weight: 2e-5 })],
    });
    const gate = res.model.getModule('model.layers.0.block_sparse_moe.gate') as Linear;
    // 2N + K = 10 rows; bias moved from its init by at most a little after 12 steps
    expect(gate.bias!.shape).toEqual([10]);
    const b = Array.from(gate.bias!.f);
    expect(b.slice(0, 4).every((v) => Math.abs(v) < 0.1)).toBe(true);
    expect(b.slice(4, 8).every((v) => Math.abs(v + 1) < 0.1)).toBe(true);
    expect(b.slice(8).every((v) => Math.abs(v + 10) < 0.1)).toBe(true);
    const ms = readMetrics(res.metricsPath);
    for (const m of ms) {
      expect(typeof m['tcmoe-balance']).toBe('number');
      expect(typeof m['tcmoe-reward']).toBe('number');
      expect(m.load).toBeGreaterThan(0);
      expect(m.load).toBeLessThanOrEqual(2);
    }
    expect(ms[11]!.lm_loss).toBeLessThan(ms[0]!.lm_loss);
  });
});

describe('AdaMoE QLoRA fine-tune of the tiny Mixtral fixture', () => {
  it('lowers the eval loss and moves the load toward the null-expert target', async () => {
    const { model } = loadModelQuantized(path.join(FIXTURES, 'tiny-mixtral'));
    expect(model.getModule('model.layers.0.block_sparse_moe.experts.0.w1')).toBeInstanceOf(Nf4Linear);
    const N = 4;
    const m = 4;
    const k = 3;
    applySurgery(model, [nullExpertsPass({ m, topK: k })], { seed: 0 });
    applyLora(model, { targets: ['gate', 'gate2', 'w1', 'w2', 'w3'], r: 8, alpha: 16, seed: 3 });
    const start = stepZeroTrueExperts(N, m, k); // 2: every null row ties its true row at step 0
    const target = (k * N) / (N + m); // 1.5: a balanced router over N + m rows
    const steps = 40;
    const res = await finetune({
      runDir: makeTmpDir('adamoe'),
      model,
      train: tinyPacked(60, 24, 320, 5),
      eval: tinyPacked(8, 24, 320, 77),
      batchSize: 4,
      trainer: { steps, lr: 1e-2, warmupSteps: 4, weightDecay: 0, evalEvery: steps, seed: 1 },
      // "tight to loose": a larger balance weight in epoch 1 (15 steps), a smaller one after
      auxLosses: [createWeightedAuxLoss({ name: 'adamoe-balance', weight: { type: 'per-epoch', values: [0.5, 0.05] } })],
    });
    expect([...res.trainer.params.keys()].every((n) => n.includes('lora_'))).toBe(true);
    expect(res.evalBefore!.load).toBeCloseTo(start, 6);
    expect(res.evalAfter!.loss).toBeLessThan(res.evalBefore!.loss - 0.5);
    const ms = readMetrics(res.metricsPath);
    expect(ms[0]!['adamoe-balance_weight']).toBe(0.5);
    expect(ms[steps - 1]!['adamoe-balance_weight']).toBe(0.05);
    const load = res.evalAfter!.load!;
    expect(Math.abs(load - target)).toBeLessThan(Math.abs(start - target));
  });
});
