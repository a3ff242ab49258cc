/**
 * The families' declared layouts, checked in focused pieces:
 * - config reading (transformers' defaults and keys: num_experts vs num_local_experts, decoder_sparse_step,
 *   mlp_only_layers, use_sliding_window; unsupported values are one error line naming the key);
 * - rope frequencies of each scaled type against transformers' own ROPE_INIT_FUNCTIONS (golden values);
 * - the module tree gives the Hub's tensor names (Qwen2-MoE shared expert, OLMoE / Qwen3 q/k norms);
 * - with transformers 5.18 (skipped without the venv): tiny checkpoints saved by transformers for the cases
 *   the cross-family suite (arch-transformers.test.ts) does not cover — rope llama3 / yarn / linear / dynamic,
 *   head_dim != hidden/heads with attention and MLP biases, OLMoE with clip_qkv actually clipping, Qwen2-MoE
 *   with a dense layer between MoE layers — NLL within 1e-5 relative, the same experts per layer and token;
 *   then save -> reload gives the same NLL, and NF4 (std 0.2 weights, widths 12-40) stays within 5% of it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nextTokenTargets } from '../src/models/causal-lm.js';
import { configFromJson, createModel } from '../src/models/create.js';
import { ForwardContext } from '../src/models/forward-context.js';
import { loadModel } from '../src/models/load.js';
import { rotaryFrequencies } from '../src/models/rotary.js';
import { saveModel } from '../src/models/save.js';
import { quantizeModel } from '../src/quant/index.js';
import { noGrad, Tensor, withScope } from '../src/tensor/index.js';
import { python5, runPythonJson } from './helpers/python.js';
import { selectedRows } from './helpers/routing-view.js';
import { makeTmpDir } from './helpers/tmpdir.js';

const small = { vocab_size: 64, hidden_size: 32, intermediate_size: 40, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2 };

function errorOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  return '(no error)';
}

describe('family configs: transformers keys and defaults', () => {
  it('Qwen2-MoE: MoE layers from decoder_sparse_step and mlp_only_layers; shared expert; no renormalisation by default', () => {
    const c = configFromJson({ ...small, architectures: ['Qwen2MoeForCausalLM'], num_experts: 6, decoder_sparse_step: 2, mlp_only_layers: [3], moe_intermediate_size: 8, shared_expert_intermediate_size: 12 });
    expect(c.moe).toMatchObject({ numExperts: 6, topK: 4, layers: [1], expertIntermediateSize: 8, sharedExpert: { intermediateSize: 12, gated: true }, router: { name: 'top-k', k: 4, renormalize: false } });
    expect(c.attention).toEqual({ qkvBias: true, oBias: false, qkNorm: 'none', clipQkv: null });
    expect(c.slidingWindow).toBeNull();
  });

  it('Qwen3-MoE reads num_experts (Hub) or num_local_experts (transformers 5 save_pretrained); OLMoE likewise', () => {
    for (const key of ['num_experts', 'num_local_experts']) {
      expect(configFromJson({ ...small, architectures: ['Qwen3MoeForCausalLM'], [key]: 5, num_experts_per_tok: 2, norm_topk_prob: true }).moe).toMatchObject({ numExperts: 5, topK: 2 });
      expect(configFromJson({ ...small, architectures: ['OlmoeForCausalLM'], [key]: 5, num_experts_per_tok: 2 }).moe).toMatchObject({ numExperts: 5, topK: 2 });
    }
    const q = configFromJson({ ...small, architectures: ['Qwen3MoeForCausalLM'], num_experts: 16, num_experts_per_tok: 4, norm_topk_prob: true, head_dim: 6 });
    expect(q.moe!.router).toEqual({ name: 'top-k', k: 4 });
    expect(q.headDim).toBe(6);
    expect(q.attention.qkNorm).toBe('head');
    const o = configFromJson({ ...small, architectures: ['OlmoeForCausalLM'], num_experts: 16, clip_qkv: 8 });
    expect(o.moe).toMatchObject({ numExperts: 16, topK: 8, layers: [0, 1, 2, 3], router: { name: 'top-k', k: 8, renormalize: false } });
    expect(o.attention).toEqual({ qkvBias: false, oBias: false, qkNorm: 'projection', clipQkv: 8 });
  });

  it('Llama-3 rope_scaling (old key) and rope_parameters (transformers 5) both read; biases; Qwen sliding window only when used', () => {
    const rs = { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };
    const a = configFromJson({ ...small, architectures: ['LlamaForCausalLM'], rope_theta: 500000, rope_scaling: rs, attention_bias: true, mlp_bias: true });
    const b = configFromJson({ ...small, architectures: ['LlamaForCausalLM'], rope_parameters: { ...rs, rope_theta: 500000 } });
    expect(a.rope).toEqual({ type: 'llama3', theta: 500000, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
    expect(b.rope).toEqual(a.rope);
    expect(a.attention).toMatchObject({ qkvBias: true, oBias: true });
    expect(a.mlpBias).toBe(true);
    expect(configFromJson({ ...small, architectures: ['Qwen2ForCausalLM'], sliding_window: 16 }).slidingWindow).toBeNull();
    expect(configFromJson({ ...small, architectures: ['Qwen2ForCausalLM'], sliding_window: 16, use_sliding_window: true, max_window_layers: 0 }).slidingWindow).toBe(16);
  });

  it('values moe-tune does not implement are one line naming the file and key', () => {
    expect(errorOf(() => configFromJson({ ...small, architectures: ['LlamaForCausalLM'], rope_scaling: { rope_type: 'longrope', factor: 2 } }, 'x/config.json')))
      .toBe("x/config.json: unsupported config: rope type 'longrope' (implemented: default, linear, dynamic, llama3, yarn)");
    expect(errorOf(() => configFromJson({ ...small, architectures: ['LlamaForCausalLM'], rope_parameters: { rope_type: 'llama3', factor: 8 } }, 'x/config.json')))
      .toBe("x/config.json: field 'rope_parameters.low_freq_factor' is missing (needed by rope type 'llama3')");
    expect(errorOf(() => configFromJson({ ...small, architectures: ['LlamaForCausalLM'], partial_rotary_factor: 0.5 }, 'x/config.json')))
      .toBe('x/config.json: unsupported config: partial_rotary_factor 0.5 (only 1 is implemented)');
    expect(errorOf(() => configFromJson({ ...small, architectures: ['MixtralForCausalLM'], attention_bias: true }, 'x/config.json')))
      .toBe('x/config.json: unsupported config: attention_bias true (only bias-free attention projections are implemented)');
    expect(errorOf(() => configFromJson({ ...small, architectures: ['Qwen9ForCausalLM'] }, 'x/config.json'))).toMatch(/^x\/config\.json: unsupported architecture 'Qwen9ForCausalLM' \(supported: .*Qwen3MoeForCausalLM, OlmoeForCausalLM/);
  });
});

describe('rope frequencies = transformers ROPE_INIT_FUNCTIONS (head_dim 16)', () => {
  // from transformers 5.18 modeling_rope_utils (float32), printed with full precision
  const golden = {
    llama3: [0.5760563611984253, 0.024240344762802124, 0.004700753837823868, 0.0009115831344388425, 0.00017677668074611574, 3.428102354519069e-05, 6.647869668086059e-06, 1.289173155782919e-06],
    yarn: [1.0, 0.07905694097280502, 0.02500000037252903, 0.007905694656074047, 0.0024999999441206455, 0.0007905694656074047, 0.0002500000118743628, 7.905694656074047e-05],
    linear: [0.5, 0.15811388194561005, 0.05000000074505806, 0.015811389312148094, 0.004999999888241291, 0.0015811389312148094, 0.0005000000237487257, 0.00015811389312148094],
    dynamic12: [1.0, 0.2864149510860443, 0.08203353732824326, 0.023495633155107498, 0.00672950129956007, 0.001927429810166359, 0.000552044773939997, 0.00015811389312148094],
  };
  const cfg = (rp: Record<string, unknown>, max = 64) => configFromJson({ ...small, hidden_size: 64, architectures: ['LlamaForCausalLM'], max_position_embeddings: max, rope_parameters: rp });
  const check = (got: number | { invFreq: Float32Array; scaling: number }, want: number[], scaling: number): void => {
    if (typeof got === 'number') throw new Error('expected scaled frequencies');
    want.forEach((w, i) => expect(Math.abs(got.invFreq[i]! - w) / w, `inv_freq[${i}]`).toBeLessThan(2e-7));
    expect(got.scaling).toBeCloseTo(scaling, 12);
  };

  it('llama3, yarn (attention factor 0.1 ln 4 + 1), linear', () => {
    check(rotaryFrequencies(cfg({ rope_type: 'llama3', rope_theta: 500000, factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 }).rope, 16, 12), golden.llama3, 1);
    check(rotaryFrequencies(cfg({ rope_type: 'yarn', rope_theta: 10000, factor: 4, original_max_position_embeddings: 16 }).rope, 16, 12), golden.yarn, 1.138629436111989);
    check(rotaryFrequencies(cfg({ rope_type: 'linear', rope_theta: 10000, factor: 2 }).rope, 16, 12), golden.linear, 1);
  });

  it('dynamic: the default frequencies up to max_position_embeddings, rescaled base past it', () => {
    const c = cfg({ rope_type: 'dynamic', rope_theta: 10000, factor: 2 }, 8);
    expect(rotaryFrequencies(c.rope, 16, 8)).toBe(10000);
    check(rotaryFrequencies(c.rope, 16, 12), golden.dynamic12, 1);
  });
});

describe('module trees use the Hub tensor names', () => {
  it('Qwen2-MoE: mlp.gate, mlp.experts.E.gate_proj, mlp.shared_expert.*, mlp.shared_expert_gate; dense layers mlp.gate_proj; q/k/v biases', () => {
    const m = createModel({ ...small, architectures: ['Qwen2MoeForCausalLM'], num_experts: 3, num_experts_per_tok: 2, moe_intermediate_size: 8, shared_expert_intermediate_size: 12, mlp_only_layers: [0, 2, 3] }, { seed: 1 });
    const names = [...m.parameters().keys()].filter((n) => n.startsWith('model.layers.0.') || n.startsWith('model.layers.1.'));
    expect(names).toEqual([
      'model.layers.0.input_layernorm.weight', 'model.layers.0.self_attn.q_proj.weight', 'model.layers.0.self_attn.q_proj.bias',
      'model.layers.0.self_attn.k_proj.weight', 'model.layers.0.self_attn.k_proj.bias', 'model.layers.0.self_attn.v_proj.weight', 'model.layers.0.self_attn.v_proj.bias',
      'model.layers.0.self_attn.o_proj.weight', 'model.layers.0.post_attention_layernorm.weight',
      'model.layers.0.mlp.gate_proj.weight', 'model.layers.0.mlp.up_proj.weight', 'model.layers.0.mlp.down_proj.weight',
      'model.layers.1.input_layernorm.weight', 'model.layers.1.self_attn.q_proj.weight', 'model.layers.1.self_attn.q_proj.bias',
      'model.layers.1.self_attn.k_proj.weight', 'model.layers.1.self_attn.k_proj.bias', 'model.layers.1.self_attn.v_proj.weight', 'model.layers.1.self_attn.v_proj.bias',
      'model.layers.1.self_attn.o_proj.weight', 'model.layers.1.post_attention_layernorm.weight', 'model.layers.1.mlp.gate.weight',
      ...[0, 1, 2].flatMap((e) => ['gate_proj', 'up_proj', 'down_proj'].map((p) => `model.layers.1.mlp.experts.${e}.${p}.weight`)),
      'model.layers.1.mlp.shared_expert.gate_proj.weight', 'model.layers.1.mlp.shared_expert.up_proj.weight', 'model.layers.1.mlp.shared_expert.down_proj.weight',
      'model.layers.1.mlp.shared_expert_gate.weight',
    ]);
    expect(m.parameters().get('model.layers.1.mlp.shared_expert_gate.weight')!.shape).toEqual([1, 32]);
  });

  it('OLMoE q_norm / k_norm over the projection ([H*Dh], [Hkv*Dh]); Qwen3 per head ([Dh])', () => {
    const o = createModel({ ...small, architectures: ['OlmoeForCausalLM'], num_experts: 2, num_experts_per_tok: 1 }, { seed: 1 }).parameters();
    expect(o.get('model.layers.0.self_attn.q_norm.weight')!.shape).toEqual([32]);
    expect(o.get('model.layers.0.self_attn.k_norm.weight')!.shape).toEqual([16]);
    const q = createModel({ ...small, architectures: ['Qwen3ForCausalLM'], head_dim: 6 }, { seed: 1 }).parameters();
    expect(q.get('model.layers.0.self_attn.q_norm.weight')!.shape).toEqual([6]);
    expect(q.get('model.layers.0.self_attn.q_proj.weight')!.shape).toEqual([24, 32]);
  });
});

interface FamilyRef {
  nll: number;
  ids: number[][];
  experts: Record<string, number[][]>;
}

const py = python5('models-families');
if (!py.available) console.log(py.skipLine);
const CASES = ['llama3', 'llama-yarn', 'llama-linear', 'llama-dynamic', 'qwen3', 'qwen2_moe', 'olmoe', 'qwen3_moe_bf16'] as const;

describe.skipIf(!py.available)('tiny checkpoints saved by transformers 5.18 (test/python/arch_families.py)', () => {
  let dir = '';
  let refs: Record<string, FamilyRef> = {};
  beforeAll(async () => {
    dir = makeTmpDir('arch-families');
    refs = await runPythonJson<Record<string, FamilyRef>>(py, [path.join('test', 'python', 'arch_families.py'), dir, CASES.join(',')], { timeoutMs: 240_000 });
  }, 300_000);
  afterAll(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const nllOf = (model: ReturnType<typeof loadModel>['model'], ids: number[][], ctx = ForwardContext.eval()): number => {
    const x = new Tensor(Int32Array.from(ids.flat()), [ids.length, ids[0]!.length]);
    return withScope(() => noGrad(() => model.loss(x, nextTokenTargets(x), ctx).item()));
  };

  it.each(CASES)('%s: NLL within 1e-5 relative, same experts per layer and token; save -> reload identical; NF4 within 5%', async (name) => {
    const r = refs[name]!;
    const { model } = loadModel(path.join(dir, name));
    const ctx = ForwardContext.eval();
    const nll = nllOf(model, r.ids, ctx);
    console.log(`${name}: moe-tune ${nll} transformers ${r.nll} rel ${(Math.abs(nll - r.nll) / r.nll).toExponential(2)}`);
    expect(Math.abs(nll - r.nll) / r.nll).toBeLessThan(1e-5);
    expect(ctx.routing.map((rec) => String(rec.layer))).toEqual(Object.keys(r.experts).sort());
    for (const rec of ctx.routing) expect(selectedRows(rec.routing), `layer ${rec.layer}`).toEqual(r.experts[String(rec.layer)]);

    const out = path.join(dir, `${name}-resaved`);
    await saveModel(model, out);
    expect(nllOf(loadModel(out).model, r.ids)).toBe(nll);
    quantizeModel(model);
    const q = nllOf(model, r.ids);
    expect(Math.abs(q - nll) / nll).toBeLessThan(0.05);
  });
});
