/**
 * Model directories of every kind moe-tune writes, each trained a few steps and saved by moe-tune, with
 * moe-tune's own NLL and per-layer load on a fixed batch: the left-hand side of the Python interop tests
 * (test/interop-remote-code.test.ts; test/python/eval_dirs.py is the right-hand side).
 */
import * as path from 'node:path';
import { applySurgery, parseSurgerySpec } from '../../src/adapters/index.js';
import { editModelConfig, moeTuneOf } from '../../src/models/config-edit.js';
import { nextTokenTargets, type CausalLM } from '../../src/models/causal-lm.js';
import { createModel } from '../../src/models/create.js';
import { ForwardContext } from '../../src/models/forward-context.js';
import { loadModel } from '../../src/models/load.js';
import { saveModel } from '../../src/models/save.js';
import { createAuxLoss, type AuxLossSpec } from '../../src/losses/registry.js';
import { createRouter } from '../../src/routers/registry.js';
import type { RouterSpec } from '../../src/routers/router.js';
import { noGrad, Rng, Tensor } from '../../src/tensor/index.js';
import { packedBatchSource } from '../../src/train/data-source.js';
import { Trainer } from '../../src/train/trainer.js';
import { tinyLlamaConfig, tinyMixtralConfig } from './tiny-model.js';
import { tinyPacked } from './train-setup.js';

export interface Variant {
  name: string;
  /** Output kind in the report table. */
  kind: string;
  base: 'mixtral' | 'llama' | 'qwen2-moe' | 'qwen3-moe' | 'olmoe' | 'qwen2' | 'qwen3' | 'llama3' | 'deepseek-v3' | 'kimi-k2';
  surgery: string[];
  router?: RouterSpec;
  /** Trainable presets for the few training steps. */
  trainable: string[];
}

export const VARIANTS: Variant[] = [
  { name: 'null-experts', kind: 'null experts (AdaMoE, zero mapping)', base: 'mixtral', surgery: ['null-experts:m=8,top_k=3'], trainable: ['all'] },
  { name: 'null-identity', kind: 'null experts (identity mapping)', base: 'mixtral', surgery: ['null-experts:m=4,top_k=3,mapping=identity'], trainable: ['all'] },
  { name: 'ternary', kind: 'ternary rows (TC-MoE)', base: 'mixtral', surgery: ['ternary'], trainable: ['all'] },
  { name: 'mo-lora', kind: 'Mo-LoRA', base: 'llama', surgery: ['mo-lora:experts=3,r=4,top_k=2,targets=q_proj|v_proj|down_proj'], trainable: ['lora', 'routers'] },
  { name: 'mo-lora-null', kind: 'Mo-LoRA + null experts', base: 'llama', surgery: ['mo-lora:experts=3,r=4,top_k=2,null=2,targets=q_proj|gate_proj'], trainable: ['lora', 'routers'] },
  { name: 'lora-unmerged', kind: 'unmerged LoRA (whole model)', base: 'mixtral', surgery: ['lora:r=4,alpha=8,targets=q_proj|w1|gate'], trainable: ['lora'] },
  { name: 'xmoe', kind: 'XMoE decomposition (threshold)', base: 'llama', surgery: ['decompose:experts=4'], router: { name: 'threshold', t: 0.8, capacity: 1.5 }, trainable: ['all'] },
  { name: 'router-top-k3', kind: 'router top-k (k=3)', base: 'mixtral', surgery: [], router: { name: 'top-k', k: 3 }, trainable: ['all'] },
  { name: 'router-top-p', kind: 'router top-p', base: 'mixtral', surgery: [], router: { name: 'top-p', p: 0.5 }, trainable: ['all'] },
  { name: 'router-threshold', kind: 'router threshold', base: 'mixtral', surgery: [], router: { name: 'threshold', t: 0.7, capacity: 1 }, trainable: ['all'] },
  { name: 'router-expert-choice', kind: 'router expert choice', base: 'mixtral', surgery: [], router: { name: 'expert-choice', capacity: 2 }, trainable: ['all'] },
  { name: 'router-random-drop', kind: 'router random drop', base: 'mixtral', surgery: [], router: { name: 'random-drop', q: 0.5, seed: 3 }, trainable: ['all'] },
  // the families of src/models/architectures: shared expert with sigmoid gate, q/k/v bias, q/k norms, clip_qkv, rope llama3
  { name: 'qwen2-moe-null', kind: 'Qwen2-MoE + null experts', base: 'qwen2-moe', surgery: ['null-experts:m=4,top_k=3'], trainable: ['all'] },
  { name: 'qwen3-moe-ternary', kind: 'Qwen3-MoE + ternary rows', base: 'qwen3-moe', surgery: ['ternary'], trainable: ['all'] },
  { name: 'olmoe-top-p', kind: 'OLMoE + router top-p', base: 'olmoe', surgery: [], router: { name: 'top-p', p: 0.6 }, trainable: ['all'] },
  { name: 'qwen2-moe-expert-choice', kind: 'Qwen2-MoE + router expert choice', base: 'qwen2-moe', surgery: [], router: { name: 'expert-choice', capacity: 2 }, trainable: ['all'] },
  { name: 'qwen3-mo-lora', kind: 'Qwen3 + Mo-LoRA', base: 'qwen3', surgery: ['mo-lora:experts=3,r=4,top_k=2,targets=q_proj|o_proj|up_proj'], trainable: ['lora', 'routers'] },
  { name: 'qwen2-lora', kind: 'Qwen2 + unmerged LoRA', base: 'qwen2', surgery: ['lora:r=4,alpha=8,targets=q_proj|k_proj|down_proj'], trainable: ['lora'] },
  { name: 'deepseek-lora', kind: 'DeepSeek-V3 (MLA, group-top-k) + unmerged LoRA', base: 'deepseek-v3', surgery: ['lora:r=4,alpha=8,targets=q_b_proj|kv_b_proj|gate_proj'], trainable: ['lora'] },
  { name: 'kimi-top-p', kind: 'Kimi-K2 (MLA, yarn) + router top-p', base: 'kimi-k2', surgery: [], router: { name: 'top-p', p: 0.5 }, trainable: ['all'] },
  { name: 'llama3-mo-lora', kind: 'Llama-3 (rope llama3) + Mo-LoRA', base: 'llama3', surgery: ['mo-lora:experts=2,r=4,top_k=1,null=1,targets=v_proj|gate_proj'], trainable: ['lora', 'routers'] },
];

/** The evaluation batch: 2 sequences of 12 pseudo-random ids. */
export function evalIds(vocab = 96): number[][] {
  const rng = new Rng(2024);
  return Array.from({ length: 2 }, () => Array.from({ length: 12 }, () => 3 + rng.int(vocab - 3)));
}

export interface LayerLoad {
  module: string;
  expertsPerToken: number;
  perExpert: number[];
}

export interface Measured {
  nll: number;
  load: LayerLoad[];
  /** Unweighted aux losses by name (the specs of auxSpecsFor). */
  aux: Record<string, number>;
}

/** The aux losses that apply to a variant (every loss whose routing rows the model has), as recipe specs. */
export function auxSpecsFor(v: Variant): AuxLossSpec[] {
  const specs: AuxLossSpec[] = [{ name: 'z-loss' }, { name: 'entropy' }, { name: 'topp-balance', sequenceLength: 12 }];
  if (v.name.startsWith('null')) specs.push({ name: 'adamoe-balance' }, { name: 'balance', form: 'per-layer' });
  else if (v.name === 'ternary') specs.push({ name: 'tcmoe-balance' }, { name: 'tcmoe-reward' }, { name: 'balance', form: 'top1' });
  else if (v.name === 'mo-lora') specs.push({ name: 'balance', form: 'per-layer' });
  else if (v.name === 'mo-lora-null') specs.push({ name: 'adamoe-balance', form: 'per-layer' });
  else specs.push({ name: 'balance' });
  return specs;
}

/** moe-tune's NLL (mean over next-token targets) and per-routing-module load on `ids`, eval mode. */
export function measure(model: CausalLM, ids: number[][], auxSpecs: AuxLossSpec[] = []): Measured {
  const x = new Tensor(Int32Array.from(ids.flat()), [ids.length, ids[0]!.length]);
  const ctx = ForwardContext.eval();
  const nll = noGrad(() => model.loss(x, nextTokenTargets(x), ctx).item());
  const load = ctx.routing.map((r) => ({
    module: r.module,
    expertsPerToken: r.routing.stats.trueExpertsPerToken,
    perExpert: Array.from(r.routing.stats.tokensPerExpert, (c) => c / r.routing.numTokens),
  }));
  const aux: Record<string, number> = {};
  for (const spec of auxSpecs) {
    const v = noGrad(() => createAuxLoss(spec).compute(ctx.routing));
    if (v) aux[spec.name] = v.item();
  }
  return { nll, load, aux };
}

/** A few AdamW steps on a tiny packed corpus (the weights move away from the surgery's step-0 values). */
export async function trainFewSteps(model: CausalLM, runDir: string, trainable: string[], steps = 3): Promise<void> {
  const trainer = new Trainer({
    model, runDir,
    train: packedBatchSource(tinyPacked(16, 16), { batchSize: 2, seed: 7 }),
    config: { steps, lr: 2e-2, warmupSteps: 0, seed: 11, trainable, evalEvery: 0, checkpointEvery: 0 },
  });
  await trainer.run();
}

const SMALL = { vocab_size: 96, hidden_size: 32, intermediate_size: 40, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 128, rms_norm_eps: 1e-6, tie_word_embeddings: false };

export function baseConfig(base: Variant['base']): Record<string, unknown> {
  switch (base) {
    case 'mixtral': return tinyMixtralConfig();
    case 'llama': return tinyLlamaConfig({ intermediate_size: 48 });
    case 'qwen2-moe': return { ...SMALL, architectures: ['Qwen2MoeForCausalLM'], model_type: 'qwen2_moe', num_experts: 4, num_experts_per_tok: 2, moe_intermediate_size: 16, shared_expert_intermediate_size: 24, decoder_sparse_step: 1, norm_topk_prob: false };
    case 'qwen3-moe': return { ...SMALL, architectures: ['Qwen3MoeForCausalLM'], model_type: 'qwen3_moe', head_dim: 12, num_experts: 4, num_experts_per_tok: 2, moe_intermediate_size: 16, norm_topk_prob: true };
    case 'olmoe': return { ...SMALL, architectures: ['OlmoeForCausalLM'], model_type: 'olmoe', num_experts: 4, num_experts_per_tok: 2, clip_qkv: 0.3, norm_topk_prob: false };
    case 'qwen2': return { ...SMALL, architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2' };
    case 'qwen3': return { ...SMALL, architectures: ['Qwen3ForCausalLM'], model_type: 'qwen3', head_dim: 12 };
    case 'deepseek-v3': return {
      ...SMALL, architectures: ['DeepseekV3ForCausalLM'], model_type: 'deepseek_v3', num_hidden_layers: 3, num_key_value_heads: 4, intermediate_size: 48,
      moe_intermediate_size: 16, n_shared_experts: 1, n_routed_experts: 8, routed_scaling_factor: 2.5, kv_lora_rank: 12, q_lora_rank: 16,
      qk_rope_head_dim: 8, v_head_dim: 12, qk_nope_head_dim: 8, n_group: 4, topk_group: 2, num_experts_per_tok: 2, first_k_dense_replace: 1,
      norm_topk_prob: true, rope_theta: 10000, rope_interleave: true, attention_bias: true,
    };
    case 'kimi-k2': return {
      ...SMALL, architectures: ['DeepseekV3ForCausalLM'], model_type: 'deepseek_v3', num_hidden_layers: 3, num_key_value_heads: 4, intermediate_size: 48,
      moe_intermediate_size: 16, n_shared_experts: 2, n_routed_experts: 8, routed_scaling_factor: 2.827, kv_lora_rank: 12, q_lora_rank: null,
      qk_rope_head_dim: 8, v_head_dim: 8, qk_nope_head_dim: 8, n_group: 1, topk_group: 1, num_experts_per_tok: 3, first_k_dense_replace: 1,
      norm_topk_prob: false, rope_interleave: false,
      rope_parameters: { rope_type: 'yarn', rope_theta: 50000, factor: 4, original_max_position_embeddings: 64, beta_fast: 32, beta_slow: 1, mscale: 1, mscale_all_dim: 1 },
    };
    case 'llama3': return tinyLlamaConfig({ intermediate_size: 48, rope_theta: 500000, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 } });
  }
}

/** Builds, trains, saves one variant under root/name; returns its directory and moe-tune's numbers on the reloaded model. */
export async function buildVariant(v: Variant, root: string, ids: number[][]): Promise<{ dir: string; measured: Measured }> {
  const model = createModel(baseConfig(v.base), { seed: 5, std: 0.08 });
  if (v.surgery.length > 0) applySurgery(model, v.surgery.map((s) => parseSurgerySpec(s)));
  if (v.router) {
    const spec = v.router;
    model.setRouter(createRouter(spec));
    editModelConfig(model, (json) => { moeTuneOf(json)['router'] = spec; }, 'router');
  }
  await trainFewSteps(model, path.join(root, `${v.name}-run`), v.trainable);
  const dir = path.join(root, v.name);
  await saveModel(model, dir, { force: true });
  // moe-tune's numbers on the saved model, freshly loaded (a random-drop router starts its streams anew, as in Python)
  return { dir, measured: measure(loadModel(dir).model, ids, auxSpecsFor(v)) };
}

export interface AdapterVariant {
  name: string;
  kind: string;
  /** LoRA surgery spec. */
  lora: string;
  trainable: string[];
}

export const ADAPTER_VARIANTS: AdapterVariant[] = [
  { name: 'adapter', kind: 'PEFT adapter (LoRA)', lora: 'lora:r=4,alpha=8,targets=q_proj|v_proj|o_proj', trainable: ['lora'] },
  { name: 'adapter-router', kind: 'PEFT adapter + trained router (modules_to_save)', lora: 'lora:r=4,alpha=8,targets=q_proj|v_proj', trainable: ['lora', 'routers', 'norms'] },
  { name: 'adapter-experts', kind: 'PEFT adapter on the experts (w1, w3, w2; fused on transformers 5)', lora: 'lora:r=2,alpha=8,targets=w1|w3|w2|o_proj', trainable: ['lora'] },
  { name: 'adapter-w1w3', kind: 'PEFT adapter on w1 + w3 without w2', lora: 'lora:r=2,alpha=8,targets=w1|w3|q_proj', trainable: ['lora'] },
  { name: 'adapter-w1-dropout', kind: 'PEFT adapter on w1 alone, lora_dropout 0.05 (ParamWrapper on transformers 5)', lora: 'lora:r=2,alpha=8,dropout=0.05,targets=w1|q_proj', trainable: ['lora'] },
];

/**
 * A Mixtral saved plain (the base), LoRA trained on it (with routers / norms in full when asked), exported as a
 * PEFT adapter, and merged into a plain checkpoint; moe-tune's NLL of the merged model.
 */
export async function buildAdapterVariant(v: AdapterVariant, root: string, ids: number[][]): Promise<{ base: string; adapter: string; merged: string; measured: Measured; modulesToSave: unknown; notes: string[]; config: Record<string, unknown> }> {
  const { exportPeftAdapter, saveMergedModel } = await import('../../src/convert/index.js');
  // router_jitter_noise 0 must come back as 0.0: transformers 5's strict config refuses an int there
  const model = createModel(tinyMixtralConfig({ router_jitter_noise: 0, attention_dropout: 0 }), { seed: 6, std: 0.08 });
  const base = path.join(root, `${v.name}-base`);
  await saveModel(model, base, { force: true });
  applySurgery(model, [parseSurgerySpec(v.lora)]);
  const trainer = new Trainer({
    model, runDir: path.join(root, `${v.name}-run`),
    train: packedBatchSource(tinyPacked(16, 16), { batchSize: 2, seed: 7 }),
    config: { steps: 3, lr: 2e-2, warmupSteps: 0, seed: 11, trainable: v.trainable, evalEvery: 0, checkpointEvery: 0 },
  });
  await trainer.run();
  const adapter = path.join(root, `${v.name}-adapter`);
  const res = await exportPeftAdapter(model, adapter, { baseModelNameOrPath: base, force: true, trained: [...trainer.params.keys()] });
  const merged = path.join(root, `${v.name}-merged`);
  await saveMergedModel(model, merged, { force: true });
  return { base, adapter, merged, measured: measure(loadModel(merged).model, ids), modulesToSave: res.config['modules_to_save'], notes: res.notes, config: res.config };
}

/**
 * QLoRA out: a Mixtral quantised to NF4, LoRA trained on it, saved 4-bit (final/model as the trainer writes
 * it); `moe-tune convert merge --dtype DTYPE` then writes a plain float checkpoint. Returns the 4-bit dir and
 * moe-tune's NLL of the 4-bit model with its LoRA (what the merged model must compute).
 */
export async function buildQloraRun(root: string, ids: number[][]): Promise<{ qdir: string; measured: Measured }> {
  const { quantizeModel, saveQuantizedModel, loadModelQuantized } = await import('../../src/quant/index.js');
  const model = createModel(tinyMixtralConfig(), { seed: 8, std: 0.08 });
  quantizeModel(model, { blockSize: 32 });
  applySurgery(model, [parseSurgerySpec('lora:r=4,alpha=8,targets=q_proj|v_proj|w1|w3')]);
  await trainFewSteps(model, path.join(root, 'qlora-run'), ['lora']);
  const qdir = path.join(root, 'qlora-final-model');
  await saveQuantizedModel(model, qdir, { force: true });
  return { qdir, measured: measure(loadModelQuantized(qdir).model, ids) };
}
