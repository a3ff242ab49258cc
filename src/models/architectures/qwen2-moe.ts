/**
 * Qwen2-MoE (transformers' models/qwen2_moe): Qwen2 attention (q / k / v bias, `qkv_bias`), MoE
 * module `mlp` with router `gate`, experts `gate_proj` / `up_proj` / `down_proj` of width
 * moe_intermediate_size, softmax top-k renormalised only with norm_topk_prob (default false), a
 * shared expert (`shared_expert`, width shared_expert_intermediate_size) scaled by
 * sigmoid(`shared_expert_gate`(x)); dense layers (`mlp`, width intermediate_size) where
 * mlp_only_layers or decoder_sparse_step say so.
 */
import { z } from 'zod';
import { plainAttention, positiveInt, qwenSlidingWindow, readKeys, refuse, softmaxTopK, sparseStepLayers } from './config-keys.js';
import type { ArchitectureLayout, FamilyMoeConfig, ModuleNames } from './layout.js';
import { FLOAT_KEPT, LLAMA_NAMES, QV_TARGETS } from './llama.js';
import { QWEN2_DEFAULTS } from './qwen2.js';

export const QWEN_MOE_NAMES: ModuleNames = { ...LLAMA_NAMES, moe: 'mlp' };

/**
 * The MoE keys of the Qwen MoE configs (the expert count's default is not in `defaults`, as either key may hold it). Qwen2-MoE and OLMoE write `num_experts`; transformers 5's
 * Qwen3-MoE config writes `num_local_experts` (its attribute_map), the Hub's Qwen3 configs `num_experts`.
 */
export function qwenMoe(c: Record<string, unknown>, where: string, shared: boolean, defaultExperts: number): FamilyMoeConfig {
  const k = readKeys(c, {
    num_experts: positiveInt.optional(),
    num_local_experts: positiveInt.optional(),
    num_experts_per_tok: positiveInt,
    norm_topk_prob: z.boolean(),
    router_aux_loss_coef: z.number().nonnegative(),
    moe_intermediate_size: positiveInt,
    decoder_sparse_step: positiveInt,
    mlp_only_layers: z.array(z.number().int().nonnegative()).nullish(),
    num_hidden_layers: positiveInt,
    shared_expert_intermediate_size: z.number().int().nonnegative().optional(),
  }, where);
  const N = k.num_experts ?? k.num_local_experts ?? defaultExperts;
  const F = k.shared_expert_intermediate_size ?? 0;
  refuse(where, [shared && F === 0 && 'shared_expert_intermediate_size 0 (a Qwen2-MoE block always has its shared expert)']);
  return {
    numExperts: N,
    topK: k.num_experts_per_tok,
    routerAuxLossCoef: k.router_aux_loss_coef,
    expertIntermediateSize: k.moe_intermediate_size,
    layers: sparseStepLayers(k.num_hidden_layers, k.decoder_sparse_step, k.mlp_only_layers ?? []),
    router: softmaxTopK(k.num_experts_per_tok, k.norm_topk_prob),
    routedScale: 1,
    sharedExpert: shared ? { intermediateSize: F, gated: true } : null,
  };
}

export const qwen2Moe: ArchitectureLayout = {
  name: 'Qwen2MoeForCausalLM',
  modelType: 'qwen2_moe',
  inTransformers: true,
  summary: 'Qwen2-MoE (Qwen1.5-MoE, Qwen2-57B-A14B): q / k / v bias, shared expert with a sigmoid gate, dense layers by decoder_sparse_step / mlp_only_layers',
  defaults: {
    ...QWEN2_DEFAULTS, hidden_size: 2048, intermediate_size: 5632, num_hidden_layers: 24, num_attention_heads: 16, num_key_value_heads: 16,
    decoder_sparse_step: 1, moe_intermediate_size: 1408, shared_expert_intermediate_size: 5632, num_experts_per_tok: 4,
    norm_topk_prob: false, router_aux_loss_coef: 0.001, mlp_only_layers: [], qkv_bias: true,
  },
  read(c, where) {
    const k = readKeys(c, { qkv_bias: z.boolean() }, where);
    return { attention: plainAttention(k.qkv_bias, false), mlpBias: false, moe: qwenMoe(c, where, true, 60), slidingWindow: qwenSlidingWindow(c, where) };
  },
  names: { ...QWEN_MOE_NAMES, sharedExpert: 'shared_expert', sharedExpertGate: 'shared_expert_gate' },
  transformers5: { renames: {}, fusedExperts: true },
  expertsKey: 'num_experts',
  loraTargets: QV_TARGETS,
  quantSkip: [...FLOAT_KEPT, 'shared_expert_gate'],
};
