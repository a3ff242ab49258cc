/**
 * OLMoE (transformers' models/olmoe): q and k RMSNorm over the whole projection (`q_norm` [H * Dh],
 * `k_norm` [Hkv * Dh]) before the head split, q / k / v clamped to [-clip_qkv, clip_qkv] when set,
 * MoE in every layer (module `mlp`, router `gate`, experts `gate_proj` / `up_proj` / `down_proj`
 * of width intermediate_size), softmax top-k not renormalised unless norm_topk_prob.
 */
import { z } from 'zod';
import { positiveInt, readKeys, softmaxTopK } from './config-keys.js';
import type { ArchitectureLayout } from './layout.js';
import { FLOAT_KEPT, QV_TARGETS } from './llama.js';
import { QWEN_MOE_NAMES } from './qwen2-moe.js';

export const olmoe: ArchitectureLayout = {
  name: 'OlmoeForCausalLM',
  modelType: 'olmoe',
  inTransformers: true,
  summary: 'OLMoE (OLMoE-1B-7B): q / k RMSNorm over the whole projection, clip_qkv, 64 experts top-8 without renormalisation',
  defaults: {
    vocab_size: 50304, hidden_size: 2048, intermediate_size: 2048, num_hidden_layers: 16, num_attention_heads: 16,
    rms_norm_eps: 1e-5, rope_theta: 10000, max_position_embeddings: 4096, tie_word_embeddings: false, pad_token_id: 1,
    bos_token_id: null, eos_token_id: 50279, attention_bias: false, clip_qkv: null, num_experts_per_tok: 8,
    router_aux_loss_coef: 0.01, norm_topk_prob: false,
  },
  read(c, where) {
    const k = readKeys(c, {
      attention_bias: z.boolean(),
      clip_qkv: z.number().positive().nullish(),
      num_experts: positiveInt.optional(),
      num_local_experts: positiveInt.optional(),
      num_experts_per_tok: positiveInt,
      norm_topk_prob: z.boolean(),
      router_aux_loss_coef: z.number().nonnegative(),
      num_hidden_layers: positiveInt,
      intermediate_size: positiveInt,
    }, where);
    const N = k.num_experts ?? k.num_local_experts ?? 64;
    return {
      attention: { qkvBias: k.attention_bias, oBias: k.attention_bias, qkNorm: 'projection', clipQkv: k.clip_qkv ?? null },
      mlpBias: false,
      slidingWindow: null,
      moe: {
        numExperts: N,
        topK: k.num_experts_per_tok,
        routerAuxLossCoef: k.router_aux_loss_coef,
        expertIntermediateSize: k.intermediate_size,
        layers: Array.from({ length: k.num_hidden_layers }, (_, i) => i),
        router: softmaxTopK(k.num_experts_per_tok, k.norm_topk_prob),
        routedScale: 1,
        sharedExpert: null,
      },
    };
  },
  names: QWEN_MOE_NAMES,
  transformers5: { renames: {}, fusedExperts: true },
  expertsKey: 'num_experts',
  loraTargets: QV_TARGETS,
  quantSkip: FLOAT_KEPT,
};
