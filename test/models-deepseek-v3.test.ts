/**
 * DeepSeek-V3 / Kimi-K2 (src/models/architectures/deepseek-v3.ts, mla-attention.ts) without Python: the
 * de-interleave permutation, multi-head latent attention's finite-difference gradients (q LoRA or plain q_proj,
 * interleaved or not, v_head_dim below and above qk_head_dim), decoding with a KV cache equals the full forward,
 * a tiny model's layout (dense first layers, MoE with shared experts and the correction bias), LoRA on its
 * projections, NF4, save / reload with the same NLL, and the one-line refusals.
 * Against transformers itself: the deepseek-v3 and kimi-k2 rows of test/arch-transformers.test.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeSafetensors } from '../src/io/index.js';
import { describe, expect, it } from 'vitest';
import { applyLora, LoraLinear, trainableParameters } from '../src/lora/index.js';
import { nextTokenTargets, type CausalLM } from '../src/models/causal-lm.js';
import { configFromJson, createModel } from '../src/models/create.js';
import { ForwardContext } from '../src/models/forward-context.js';
import { KvCache } from '../src/models/kv-cache.js';
import { Linear } from '../src/models/linear.js';
import { loadModel } from '../src/models/load.js';
import { deinterleave, MlaAttention, type MlaDims } from '../src/models/mla-attention.js';
import { RMSNorm } from '../src/models/rms-norm.js';
import { saveModel } from '../src/models/save.js';
import { SparseMoeBlock } from '../src/models/moe-block.js';
import { loadModelQuantized, Nf4Linear, quantizeModel } from '../src/quant/index.js';
import { flopDimsOf } from '../src/eval/flop-dims.js';
import { flopsAgainstTopK } from '../src/routers/stats.js';
import { backward, noGrad, Rng, Tensor, withScope } from '../src/tensor/index.js';
import { gradcheck, rand64 } from './helpers/gradcheck.js';
import { makeTmpDir } from './helpers/tmpdir.js';
import { tinyDeepseekConfig } from './helpers/tiny-model.js';

const ids = (B: number, T: number, seed = 3): Tensor => {
  const r = new Rng(seed);
  return new Tensor(Int32Array.from({ length: B * T }, () => 2 + Math.floor(r.next() * 90)), [B, T]);
};
const nll = (m: CausalLM, x: Tensor): number => withScope(() => noGrad(() => m.loss(x, nextTokenTargets(x)).item()));

describe('DeepSeek-V3 multi-head latent attention', () => {
  it('de-interleaves pairs (x0, x1), (x2, x3), ... into [x0, x2, ..., x1, x3, ...]', () => {
    const x = Tensor.from([0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15], [1, 2, 6]);
    expect(Array.from(deinterleave(x).f)).toEqual([0, 2, 4, 1, 3, 5, 10, 12, 14, 11, 13, 15]);
  });

  const cases: [string, Partial<MlaDims>][] = [
    ['q LoRA, interleaved rope, d_v > d_qk', { qLoraRank: 6, ropeInterleave: true, vHeadDim: 10 }],
    ['plain q_proj, rotate-half rope, d_v < d_qk', { qLoraRank: null, ropeInterleave: false, vHeadDim: 4 }],
  ];
  it.each(cases)('%s: finite-difference gradients of x and every weight', (_name, over) => {
    const rng = new Rng(21);
    const D = 12;
    const dims: MlaDims = { numHeads: 2, qLoraRank: 6, kvLoraRank: 5, qkNopeHeadDim: 4, qkRopeHeadDim: 4, vHeadDim: 6, ropeInterleave: true, scale: 8 ** -0.5, ...over };
    const { numHeads: H, qkNopeHeadDim: dn, qkRopeHeadDim: dr, vHeadDim: dv, kvLoraRank: R } = dims;
    const lin = (o: number, i: number): Linear => new Linear(rand64([o, i], rng, { std: 0.4 }));
    const norm = (n: number): RMSNorm => new RMSNorm(rand64([n], rng, { lo: 0.8, hi: 1.2 }), 1e-6);
    const q = dims.qLoraRank === null
      ? { q_proj: lin(H * (dn + dr), D), q_a_proj: null, q_a_layernorm: null, q_b_proj: null }
      : { q_proj: null, q_a_proj: lin(dims.qLoraRank, D), q_a_layernorm: norm(dims.qLoraRank), q_b_proj: lin(H * (dn + dr), dims.qLoraRank) };
    const attn = new MlaAttention(dims, { ...q, kv_a_proj_with_mqa: lin(R + dr, D), kv_a_layernorm: norm(R), kv_b_proj: lin(H * (dn + dv), R), o_proj: lin(D, H * dv) }, () => 10000);
    const x = rand64([2, 5, D], rng);
    const params = [...attn.parameters().values()];
    const res = gradcheck((xx) => attn.forward(xx), [x, ...params]);
    expect(res.maxRelError).toBeLessThan(1e-6);
  });

  it('decoding token by token with the KV cache gives the full forward', () => {
    const model = createModel(tinyDeepseekConfig({ num_hidden_layers: 2 }), { seed: 5, std: 0.2 });
    const x = ids(1, 7);
    const full = withScope(() => noGrad(() => Float32Array.from(model.forward(x).f)));
    const cache = new KvCache(2, 1, model.config.numKvHeads, model.config.headDim);
    const V = model.config.vocabSize;
    for (let t = 0; t < 7; t++) {
      const step = withScope(() => noGrad(() => Float32Array.from(model.forward(new Tensor(x.i32.subarray(t, t + 1), [1, 1]), { cache }).f)));
      for (let v = 0; v < V; v++) expect(step[v]!).toBeCloseTo(full[t * V + v]!, 4);
    }
  });
});

describe('DeepSeek-V3 tiny model', () => {
  it('has dense first layers, MoE with shared experts and the correction bias, the group-top-k router, Hub key names', () => {
    const model = createModel(tinyDeepseekConfig(), { seed: 1, std: 0.2 });
    const c = model.config;
    expect(c.moe!.layers).toEqual([1, 2]);
    expect(c.moe!.router).toEqual({ name: 'group-top-k', k: 2, groups: 4, group_k: 2, renormalize: true });
    const blocks = model.moeBlocks();
    expect(blocks.length).toBe(2);
    expect(blocks[0]).toBeInstanceOf(SparseMoeBlock);
    expect(blocks[0]!.gateScale).toBe(2.5);
    const keys = [...model.parameters().keys()];
    for (const k of [
      'model.layers.0.mlp.gate_proj.weight', 'model.layers.0.self_attn.q_a_proj.weight', 'model.layers.0.self_attn.q_a_layernorm.weight',
      'model.layers.0.self_attn.q_b_proj.weight', 'model.layers.0.self_attn.kv_a_proj_with_mqa.weight', 'model.layers.0.self_attn.kv_a_layernorm.weight',
      'model.layers.0.self_attn.kv_b_proj.weight', 'model.layers.0.self_attn.o_proj.weight', 'model.layers.1.mlp.gate.weight',
      'model.layers.1.mlp.gate.e_score_correction_bias', 'model.layers.1.mlp.experts.7.down_proj.weight', 'model.layers.1.mlp.shared_experts.up_proj.weight',
    ]) expect(keys, k).toContain(k);
    expect(model.parameters().get('model.layers.1.mlp.shared_experts.up_proj.weight')!.shape).toEqual([16, 32]);
  });

  it('LoRA on the MLA projections trains; NF4 keeps the router float; save / reload (f32, bf16) gives the same NLL', async () => {
    const model = createModel(tinyDeepseekConfig(), { seed: 2, std: 0.2 });
    const x = ids(2, 9);
    const before = nll(model, x);
    const dir = makeTmpDir('deepseek-save');
    await saveModel(model, path.join(dir, 'f32'));
    const again = loadModel(path.join(dir, 'f32'));
    expect(nll(again.model, x)).toBe(nll(model, x));
    expect(again.model.parameters().get('model.layers.2.mlp.gate.e_score_correction_bias')!.f).toEqual(model.parameters().get('model.layers.2.mlp.gate.e_score_correction_bias')!.f);

    const lora = applyLora(model, { r: 4, alpha: 8, targets: ['q_b_proj', 'kv_b_proj', 'o_proj'], seed: 1 });
    expect(lora.modules.length).toBe(9);
    expect(model.getModule('model.layers.1.self_attn.kv_b_proj')).toBeInstanceOf(LoraLinear);
    const params = [...trainableParameters(model).values()];
    withScope(() => backward(model.loss(x, nextTokenTargets(x), new ForwardContext(true))));
    expect(params.every((p) => p.grad !== null)).toBe(true);

    const q = createModel(tinyDeepseekConfig(), { seed: 2, std: 0.2 });
    const res = quantizeModel(q);
    expect(q.getModule('model.layers.1.self_attn.kv_b_proj')).toBeInstanceOf(Nf4Linear);
    expect(q.getModule('model.layers.1.mlp.experts.3.up_proj')).toBeInstanceOf(Nf4Linear);
    expect(q.getModule('model.layers.1.mlp.gate')).toBeInstanceOf(Linear);
    expect(res.quantized.length).toBeGreaterThan(20);
    expect(Math.abs(nll(q, x) - before) / before).toBeLessThan(0.05);
    const q2 = loadModelQuantized(path.join(dir, 'f32')).model;
    expect(nll(q2, x)).toBeCloseTo(nll(q, x), 5);
  });

  it("loads a checkpoint with DeepSeek's multi-token-prediction layer (unread, as transformers), but still refuses other stray tensors", async () => {
    const dir = makeTmpDir('deepseek-mtp');
    const model = createModel(tinyDeepseekConfig({ num_nextn_predict_layers: 1 }), { seed: 4, std: 0.2 });
    await saveModel(model, path.join(dir, 'base'));
    const x = ids(1, 6);
    const tensors = [...model.parameters()].map(([name, t]) => ({ name, dtype: 'F32' as const, shape: t.shape, data: Float32Array.from(t.f) }));
    const extra = (name: string) => ({ name, dtype: 'F32' as const, shape: [4, 32], data: new Float32Array(128) });
    for (const [sub, names] of [['mtp', ['model.layers.3.eh_proj.weight', 'model.layers.3.shared_head.head.weight']], ['stray', ['model.layers.4.eh_proj.weight']]] as const) {
      const d = path.join(dir, sub);
      fs.mkdirSync(d);
      fs.copyFileSync(path.join(dir, 'base', 'config.json'), path.join(d, 'config.json'));
      writeSafetensors(path.join(d, 'model.safetensors'), [...tensors, ...names.map(extra)], { format: 'pt' });
    }
    expect(nll(loadModel(path.join(dir, 'mtp')).model, x)).toBe(nll(model, x));
    expect(() => loadModel(path.join(dir, 'stray'))).toThrow(/1 tensor\(s\) not used by DeepseekV3ForCausalLM: model.layers.4.eh_proj.weight/);
  });

  it('FLOP dimensions: MLA projections = 2 x its weights, score FLOPs per position, the shared expert in both routed model and baseline', () => {
    for (const over of [{}, { q_lora_rank: null }]) {
      const model = createModel(tinyDeepseekConfig(over), { seed: 1, std: 0.2 });
      const dims = flopDimsOf(model.config, 10)!;
      const attnWeights = model.namedParameters().filter(([n]) => n.startsWith('model.layers.0.self_attn.') && !n.includes('layernorm')).reduce((a, [, t]) => a + t.size, 0);
      expect(dims.attention!.projectionFlops).toBe(2 * attnWeights);
      expect(dims.attention!.flopsPerPosition).toBe(2 * 4 * (16 + 12));
      expect(dims.sharedExpertIntermediateSize).toBe(16);
      const noShared = flopsAgainstTopK([], { ...dims, sharedExpertIntermediateSize: 0 });
      const withShared = flopsAgainstTopK([], dims);
      const shared = 2 * 3 * 32 * 16 * 2; // two MoE layers
      expect(withShared.model.perToken - noShared.model.perToken).toBe(shared);
      expect(withShared.model.baselinePerToken - noShared.model.baselinePerToken).toBe(shared);
    }
  });

  it('refuses config values it does not implement, naming the field', () => {
    const bad = (over: Record<string, unknown>): (() => unknown) => () => configFromJson(tinyDeepseekConfig(over), 'cfg.json');
    expect(bad({ num_key_value_heads: 2 })).toThrow(/cfg.json: unsupported config: num_key_value_heads 2/);
    expect(bad({ scoring_func: 'softmax' })).toThrow(/scoring_func 'softmax'/);
    expect(bad({ topk_method: 'greedy' })).toThrow(/topk_method 'greedy'/);
    expect(bad({ moe_layer_freq: 2 })).toThrow(/moe_layer_freq 2/);
    expect(bad({ n_group: 3 })).toThrow(/n_routed_experts 8 is not a multiple of n_group 3/);
    expect(bad({ topk_group: 5 })).toThrow(/topk_group 5 is more than n_group 4/);
    expect(bad({ num_experts_per_tok: 5 })).toThrow(/num_experts_per_tok 5 is more than the 4 experts of the 2 kept groups/);
    expect(bad({ kv_lora_rank: 0 })).toThrow(/cfg.json: field 'kv_lora_rank'/);
    // the Hub's DeepSeek-V3 / Kimi-K2 weights are block FP8 e4m3 (read dequantised: test/io-fp8-blocks.test.ts); e5m2 and other schemes are not
    expect(bad({ quantization_config: { quant_method: 'fp8', fmt: 'e4m3', weight_block_size: [128, 128] } })).not.toThrow();
    expect(bad({ quantization_config: { quant_method: 'fp8', fmt: 'e5m2', weight_block_size: [128, 128] } })).toThrow(/cfg.json: unsupported config: quantization_config.fmt 'e5m2'/);
    expect(bad({ quantization_config: { quant_method: 'gptq', bits: 4 } })).toThrow(/cfg.json: unsupported config: quantization_config.quant_method 'gptq' .*dequantise to bf16 first/);
  });
});
