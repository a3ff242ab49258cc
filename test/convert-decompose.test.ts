/**
 * decompose-ffn (XMoE): a dense Llama becomes N small experts + a zero router with outputs scaled
 * by N; at threshold t = 1, capacity N the logits equal the dense model's. Expert i owns rows S_i of
 * gate/up and columns S_i of down; some layers only; save -> load; errors.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { applySurgery, parseSurgerySpec } from '../src/adapters/index.js';
import { decomposeFfn } from '../src/convert/index.js';
import { applyLora } from '../src/lora/index.js';
import { ForwardContext } from '../src/models/forward-context.js';
import type { Linear } from '../src/models/linear.js';
import { loadModel } from '../src/models/load.js';
import { GatedMLP } from '../src/models/mlp.js';
import { SparseMoeBlock } from '../src/models/moe-block.js';
import { saveModel } from '../src/models/save.js';
import { createRouter } from '../src/routers/registry.js';
import { Tensor } from '../src/tensor/index.js';
import { FIXTURES, fixtureBatch } from './helpers/fixtures.js';
import { makeTmpDir } from './helpers/tmpdir.js';
import { tinyLlamaConfig, tinyMixtralConfig, tinyModel } from './helpers/tiny-model.js';
import { logits, maxDiff } from './helpers/compare.js';

const LLAMA = path.join(FIXTURES, 'tiny-llama');

/**
 * float32 logits of the fixture (|logits| up to 37): 1e-5 of the logit scale. The decomposed sum
 * only reorders the FFN's dot products (measured 2.5e-7 (js) and 5e-7 (native) of the scale; js
 * and native differ by 2e-6 of it on the dense model itself). A wrong split moves logits by O(1).
 */
function tol(ref: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < ref.length; i++) m = Math.max(m, Math.abs(ref[i]!));
  return 1e-5 * Math.max(10, m);
}

describe('decomposeFfn on tiny-llama (F = 96)', () => {
  it('N = 4 at t = 1, capacity = N: the dense logits (float32 tolerance); every token reaches every expert', () => {
    const { model: dense } = loadModel(LLAMA);
    const x = fixtureBatch(16);
    const want = logits(dense, x);
    const { model, notes } = decomposeFfn(dense, { experts: 4 });
    expect(model.config.architecture).toBe('XMoEForCausalLM');
    expect(dense.config.architecture).toBe('LlamaForCausalLM');
    expect(dense.model.layers.at(0).ffn).toBeInstanceOf(GatedMLP);
    expect(model.config.extensions).toMatchObject({ gate_scale: 4, expert_intermediate_size: 24, router: { name: 'threshold', t: 1, capacity: 4 } });
    expect(model.config.moe).toMatchObject({ numExperts: 4, expertIntermediateSize: 24, layers: [0, 1] });
    expect(notes[1]).toContain("moe-tune's conversion (not paper 001's)");
    const ctx = ForwardContext.eval();
    const got = logits(model, x, ctx);
    expect(maxDiff(got, want)).toBeLessThan(tol(want));
    for (const rec of ctx.routing) {
      expect(rec.routing.stats.trueExpertsPerToken).toBe(4);
      expect(rec.routing.stats.droppedAssignments).toBe(0);
    }
    console.log(`decompose-ffn N=4 on tiny-llama: max |logit diff| ${maxDiff(got, want).toExponential(3)} (max |logit| ${Math.max(...want.map(Math.abs)).toFixed(3)})`);
  });

  it('expert i owns rows S_i of gate_proj / up_proj and columns S_i of down_proj; the router starts at zero', () => {
    const { model: dense } = loadModel(LLAMA);
    const mlp = dense.model.layers.at(1).ffn as GatedMLP;
    const g = (mlp.gate as Linear).weight.f;
    const u = (mlp.up as Linear).weight.f;
    const d = (mlp.down as Linear).weight.f;
    const { model } = decomposeFfn(dense, { experts: 3 });
    const p = model.parameters();
    const [D, F, Fe] = [64, 96, 32];
    for (let e = 0; e < 3; e++) {
      const w1 = p.get(`model.layers.1.block_sparse_moe.experts.${e}.w1.weight`)!;
      const w2 = p.get(`model.layers.1.block_sparse_moe.experts.${e}.w2.weight`)!;
      const w3 = p.get(`model.layers.1.block_sparse_moe.experts.${e}.w3.weight`)!;
      expect(w1.shape).toEqual([Fe, D]);
      expect(w2.shape).toEqual([D, Fe]);
      expect(Array.from(w1.f)).toEqual(Array.from(g.subarray(e * Fe * D, (e + 1) * Fe * D)));
      expect(Array.from(w3.f)).toEqual(Array.from(u.subarray(e * Fe * D, (e + 1) * Fe * D)));
      for (let r = 0; r < D; r++) {
        for (let c = 0; c < Fe; c++) expect(w2.f[r * Fe + c]).toBe(d[r * F + e * Fe + c]);
      }
    }
    const gate = p.get('model.layers.1.block_sparse_moe.gate.weight')!;
    expect(gate.shape).toEqual([3, D]);
    expect(gate.f.every((v) => v === 0)).toBe(true);
    expect([...p.keys()].some((k) => k.includes('.mlp.'))).toBe(false);
  });

  it('layers=[1] decomposes only layer 1 (moe_layers); save -> load rebuilds it exactly', async () => {
    const { model: dense } = loadModel(LLAMA);
    const x = fixtureBatch(16);
    const want = logits(dense, x);
    const { model } = decomposeFfn(dense, { experts: 2, layers: [1] });
    expect(model.model.layers.at(0).ffn).toBeInstanceOf(GatedMLP);
    expect(model.model.layers.at(1).ffn).toBeInstanceOf(SparseMoeBlock);
    expect(model.config.extensions.moe_layers).toEqual([1]);
    const got = logits(model, x);
    expect(maxDiff(got, want)).toBeLessThan(tol(want));
    const dir = path.join(makeTmpDir('decompose'), 'model');
    await saveModel(model, dir);
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    expect(cfg.architectures).toEqual(['MoeTuneForCausalLM']);
    expect(cfg.num_local_experts).toBe(2);
    expect(cfg.moe_tune).toMatchObject({ gate_scale: 2, expert_intermediate_size: 48, router: { name: 'threshold', t: 1, capacity: 2 }, moe_layers: [1], base_architecture: 'XMoEForCausalLM', base_model_type: 'xmoe' });
    const loaded = loadModel(dir).model;
    expect(maxDiff(logits(loaded, x), got)).toBe(0);
  });

  it('as a surgery pass; a sparser threshold router changes the function (the router is live)', () => {
    const { model } = loadModel(LLAMA);
    const x = fixtureBatch(16);
    const want = logits(model, x);
    applySurgery(model, [parseSurgerySpec('decompose-ffn:experts=4')]);
    expect(maxDiff(logits(model, x), want)).toBeLessThan(tol(want));
    model.setRouter(createRouter({ name: 'threshold', t: 0.5, capacity: 4 }));
    const ctx = ForwardContext.eval();
    const sparse = logits(model, x, ctx);
    expect(maxDiff(sparse, want)).toBeGreaterThan(1e-2);
    expect(ctx.routing[0]!.routing.stats.trueExpertsPerToken).toBe(2);
  });
});

describe('decomposeFfn on a small-logit model', () => {
  it('N = 8 (F = 48 -> width 6): logits within 1e-5 of the dense model', () => {
    const dense = tinyModel(tinyLlamaConfig(), 6);
    const x = new Tensor(Int32Array.from([7, 1, 33, 80, 12, 5, 60, 2, 91, 44]), [2, 5]);
    const want = logits(dense, x);
    expect(Math.max(...want.map(Math.abs))).toBeLessThan(10);
    const got = logits(decomposeFfn(dense, { experts: 8 }).model, x);
    expect(maxDiff(got, want)).toBeLessThan(1e-5);
  });
});

describe('decompose-ffn errors are one line', () => {
  it('width not a multiple of N, a MoE model, an adapter on the FFN, a bad layer', () => {
    const { model } = loadModel(LLAMA);
    expect(() => decomposeFfn(model, { experts: 5 })).toThrow('decompose-ffn: intermediate_size 96 is not a multiple of experts=5 (expert i owns an equal contiguous slice)');
    expect(() => decomposeFfn(tinyModel(tinyMixtralConfig()), { experts: 2 })).toThrow('decompose-ffn: MixtralForCausalLM already has MoE layers; decompose-ffn takes a dense Llama');
    expect(() => decomposeFfn(model, { experts: 4, layers: [2] })).toThrow('decompose-ffn: layer 2 is not in [0, 2)');
    applyLora(model, { r: 2, alpha: 4, targets: ['up_proj'] });
    expect(() => decomposeFfn(model, { experts: 4 })).toThrow('decompose-ffn: model.layers.0.mlp.up_proj has an adapter; merge LoRA (mergeLora) before decomposing');
    const { model: m2 } = loadModel(LLAMA);
    applyLora(m2, { r: 2, alpha: 4, targets: 'all-linear', layers: [0] });
    expect(() => decomposeFfn(m2, { experts: 4, layers: [1] })).toThrow(
      'decompose-ffn: moe_tune.lora targets would also select model.layers.1.block_sparse_moe.gate after decomposition; decompose before adding adapters');
  });
});
