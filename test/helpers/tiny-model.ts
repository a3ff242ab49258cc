import { createModel } from '../../src/models/create.js';
import { saveModel } from '../../src/models/save.js';
import type { CausalLM } from '../../src/models/causal-lm.js';
import type { FloatStorageDtype } from '../../src/io/index.js';

/** config.json objects for tiny models in Hugging Face layout (override any key). */
export function tinyLlamaConfig(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: 96, hidden_size: 32, intermediate_size: 48,
    num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, rms_norm_eps: 1e-5, rope_theta: 10000,
    max_position_embeddings: 128, tie_word_embeddings: false, hidden_act: 'silu', bos_token_id: 1, eos_token_id: 2,
    ...over,
  };
}

export function tinyMixtralConfig(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    architectures: ['MixtralForCausalLM'], model_type: 'mixtral', vocab_size: 96, hidden_size: 32, intermediate_size: 40,
    num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, rms_norm_eps: 1e-5, rope_theta: 1e6,
    max_position_embeddings: 128, tie_word_embeddings: false, hidden_act: 'silu', bos_token_id: 1, eos_token_id: 2,
    num_local_experts: 4, num_experts_per_tok: 2, router_aux_loss_coef: 0.02, sliding_window: null,
    ...over,
  };
}

/** DeepSeek-V3: MLA with q LoRA, group-limited sigmoid routing, a shared expert, layer 0 dense. */
export function tinyDeepseekConfig(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    architectures: ['DeepseekV3ForCausalLM'], model_type: 'deepseek_v3', vocab_size: 96, hidden_size: 32, intermediate_size: 48,
    moe_intermediate_size: 16, num_hidden_layers: 3, num_attention_heads: 4, num_key_value_heads: 4, n_shared_experts: 1,
    n_routed_experts: 8, routed_scaling_factor: 2.5, kv_lora_rank: 12, q_lora_rank: 16, qk_rope_head_dim: 8, v_head_dim: 12,
    qk_nope_head_dim: 8, n_group: 4, topk_group: 2, num_experts_per_tok: 2, first_k_dense_replace: 1, norm_topk_prob: true,
    max_position_embeddings: 128, rms_norm_eps: 1e-6, rope_theta: 10000, rope_interleave: true, tie_word_embeddings: false,
    bos_token_id: 0, eos_token_id: 1, hidden_act: 'silu',
    ...over,
  };
}

/** A random model (std 0.1 by default so logits are not all equal) and, optionally, its HF directory. */
export function tinyModel(config: Record<string, unknown>, seed = 1, std = 0.1): CausalLM {
  return createModel(config, { seed, std });
}

export async function writeTinyCheckpoint(dir: string, config: Record<string, unknown>, opts: { seed?: number; std?: number; dtype?: FloatStorageDtype; maxShardBytes?: number } = {}): Promise<CausalLM> {
  const model = tinyModel(config, opts.seed ?? 1, opts.std ?? 0.1);
  await saveModel(model, dir, { dtype: opts.dtype, maxShardBytes: opts.maxShardBytes, force: true });
  return model;
}
