/**
 * add-ternary-rows (TC-MoE on a trained Mixtral): gate [2N+K, D] + bias with rows E^1 (old gate),
 * E^-1, E^0, bias exactly 0 / -1 / -10 by type, new rows N(0, 0.006^2), the ternary router, the
 * step-0 loss change reported, save -> load, errors.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { applySurgery, batchLoss, formatSurgeryReport, parseSurgerySpec, ternaryGate, ternaryPass } from '../src/adapters/index.js';
import { nextTokenTargets } from '../src/models/causal-lm.js';
import type { Linear } from '../src/models/linear.js';
import { loadModel } from '../src/models/load.js';
import { saveModel } from '../src/models/save.js';
import { noGrad, ops, Rng, withScope } from '../src/tensor/index.js';
import { FIXTURES, fixtureBatch } from './helpers/fixtures.js';
import { logits } from './helpers/compare.js';
import { makeTmpDir } from './helpers/tmpdir.js';
import { tinyLlamaConfig, tinyModel } from './helpers/tiny-model.js';

const MIXTRAL = path.join(FIXTURES, 'tiny-mixtral');

describe('ternaryGate', () => {
  it('rows E^1 = the old gate, E^-1 and E^0 ~ N(0, 0.006^2), bias 0 / -1 / -10', () => {
    const [N, D, K] = [8, 128, 2];
    const rng = new Rng(4);
    const gate = new Float32Array(N * D).map(() => rng.normal());
    const { weight, bias } = ternaryGate(gate, N, D, K, new Rng(5));
    expect(weight.length).toBe((2 * N + K) * D);
    expect(Array.from(weight.subarray(0, N * D))).toEqual(Array.from(gate));
    expect(Array.from(bias)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, -1, -1, -1, -1, -1, -1, -1, -1, -10, -10]);
    const fresh = weight.subarray(N * D);
    let sq = 0;
    for (const v of fresh) sq += v * v;
    const std = Math.sqrt(sq / fresh.length);
    // 1280 samples: the sample std is within ~6% of 0.006 with overwhelming probability
    expect(Math.abs(std - 0.006) / 0.006).toBeLessThan(0.06);
  });
});

describe('ternary on tiny-mixtral (N = 4, top-2)', () => {
  it('gate [2N+K, D] with bias, config, ternary router; step-0 loss change reported', () => {
    const { model } = loadModel(MIXTRAL);
    const x = fixtureBatch(16);
    const lossBefore = withScope(() => noGrad(() => ops.crossEntropy(model.forward(x), nextTokenTargets(x), { ignoreIndex: -100 }).item()));
    const gate0 = Float32Array.from((model.getModule('model.layers.0.block_sparse_moe.gate') as Linear).weight.f);
    const { report } = applySurgery(model, [parseSurgerySpec('ternary')], { batch: { ids: x }, seed: 1 });
    const p = model.parameters();
    const w = p.get('model.layers.0.block_sparse_moe.gate.weight')!;
    const b = p.get('model.layers.0.block_sparse_moe.gate.bias')!;
    expect(w.shape).toEqual([10, 64]);
    expect(b.shape).toEqual([10]);
    expect(Array.from(b.f)).toEqual([0, 0, 0, 0, -1, -1, -1, -1, -10, -10]);
    expect(Array.from(w.f.subarray(0, 4 * 64))).toEqual(Array.from(gate0));
    expect(model.config.extensions.ternary).toEqual({ zero_experts: 2 });
    expect(model.moeBlocks()[0]!.router.spec).toMatchObject({ name: 'ternary', k: 2, zero: 2 });
    const step = report.passes[0]!;
    expect(step.added).toBe(2 * (6 * 64 + 10)); // (N + K) d + 2N + K per layer
    expect(step.loss!.before).toBeCloseTo(lossBefore, 6);
    expect(step.loss!.after).toBeCloseTo(batchLoss(model, x), 6);
    // the paper only pretrains: on a trained model the function changes
    expect(Math.abs(step.loss!.change)).toBeGreaterThan(1e-4);
    expect(step.notes[1]).toContain('TC-MoE (paper 000) only pretrains from scratch');
    const text = formatSurgeryReport(report).join('\n');
    expect(text).toContain('step-0 loss on the batch:');
    console.log(`ternary on tiny-mixtral, step-0 loss ${step.loss!.before.toFixed(5)} -> ${step.loss!.after.toFixed(5)} (change ${step.loss!.change.toExponential(3)})`);
  });

  it('zero=K sets the number of zero experts; save -> load rebuilds gate, bias and router exactly', async () => {
    const { model } = loadModel(MIXTRAL);
    applySurgery(model, [ternaryPass({ zero: 3 })], { seed: 2 });
    const dir = path.join(makeTmpDir('ternary'), 'model');
    await saveModel(model, dir);
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    expect(cfg.model_type).toBe('moe_tune');
    expect(cfg.moe_tune).toMatchObject({ ternary: { zero_experts: 3 }, base_architecture: 'MixtralForCausalLM' });
    const loaded = loadModel(dir).model;
    expect(loaded.parameters().get('model.layers.1.block_sparse_moe.gate.weight')!.shape).toEqual([11, 64]);
    expect(Array.from(loaded.parameters().get('model.layers.1.block_sparse_moe.gate.bias')!.f)).toEqual([0, 0, 0, 0, -1, -1, -1, -1, -10, -10, -10]);
    const x = fixtureBatch(16);
    const a = logits(loaded, x);
    const b = logits(model, x);
    let d = 0;
    for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
    expect(d).toBe(0);
  });
});

describe('ternary errors are one line', () => {
  it('dense model, twice, after null experts, bad K', () => {
    expect(() => applySurgery(tinyModel(tinyLlamaConfig()), [parseSurgerySpec('ternary')])).toThrow(
      "surgery pass 'ternary': LlamaForCausalLM has no MoE layers; ternary router rows need MoE blocks");
    const twice = loadModel(MIXTRAL).model;
    applySurgery(twice, [parseSurgerySpec('ternary')]);
    expect(() => applySurgery(twice, [parseSurgerySpec('ternary')])).toThrow("surgery pass 'ternary': the model already has ternary router rows (K=2)");
    const nulls = loadModel(MIXTRAL).model;
    expect(() => applySurgery(nulls, [parseSurgerySpec('null-experts:m=4,top_k=3'), parseSurgerySpec('ternary:zero=2')])).toThrow(
      "surgery pass 'ternary:zero=2': the model has AdaMoE null experts; ternary rows do not combine with them");
    expect(() => applySurgery(loadModel(MIXTRAL).model, [parseSurgerySpec('ternary:zero=0')])).toThrow(
      "surgery pass 'ternary:zero=0': zero (the number of zero experts K) must be a positive integer, got 0");
  });
});
