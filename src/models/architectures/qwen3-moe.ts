/**
 * Qwen3-MoE (transformers' models/qwen3_moe): Qwen3 attention (per-head q / k RMSNorm), MoE module
 * `mlp` (router `gate`, experts `gate_proj` / `up_proj` / `down_proj` of width moe_intermediate_size),
 * softmax top-k renormalised when norm_topk_prob (true in the released checkpoints), no shared expert.
 */
import { qwenSlidingWindow } from './config-keys.js';
import type { ArchitectureLayout } from './layout.js';
import { FLOAT_KEPT, QV_TARGETS } from './llama.js';
import { QWEN2_DEFAULTS } from './qwen2.js';
import { QWEN_MOE_NAMES, qwenMoe } from './qwen2-moe.js';
import { qwen3Attention } from './qwen3.js';

export const qwen3Moe: ArchitectureLayout = {
  name: 'Qwen3MoeForCausalLM',
  modelType: 'qwen3_moe',
  inTransformers: true,
  summary: 'Qwen3-MoE (Qwen3-30B-A3B, 235B-A22B): per-head q / k RMSNorm, 128 experts top-8 at full size',
  defaults: {
    ...QWEN2_DEFAULTS, hidden_size: 2048, intermediate_size: 6144, num_hidden_layers: 24, num_attention_heads: 32, num_key_value_heads: 4,
    head_dim: null, attention_bias: false, decoder_sparse_step: 1, moe_intermediate_size: 768, num_experts_per_tok: 8,
    norm_topk_prob: false, router_aux_loss_coef: 0.001, mlp_only_layers: [],
  },
  read: (c, where) => ({ attention: qwen3Attention(c, where), mlpBias: false, moe: qwenMoe(c, where, false, 128), slidingWindow: qwenSlidingWindow(c, where) }),
  names: QWEN_MOE_NAMES,
  transformers5: { renames: {}, fusedExperts: true },
  expertsKey: 'num_experts',
  loraTargets: QV_TARGETS,
  quantSkip: FLOAT_KEPT,
};
