/**
 * Llama (Llama-2 and Llama-3.x; transformers' models/llama): grouped-query attention with optional
 * biases (attention_bias on q / k / v / o, mlp_bias on the MLP), explicit head_dim, rope scaling
 * (linear, dynamic, llama3, yarn: src/models/rotary.ts), dense SwiGLU MLP.
 */
import { z } from 'zod';
import { plainAttention, readKeys } from './config-keys.js';
import type { ArchitectureLayout, ModuleNames } from './layout.js';

/** Llama's module names; the dense families reuse them. */
export const LLAMA_NAMES: ModuleNames = {
  mlp: 'mlp',
  mlpProj: { gate: 'gate_proj', up: 'up_proj', down: 'down_proj' },
  moe: 'mlp',
  router: 'gate',
  experts: 'experts',
  expertProj: { gate: 'gate_proj', up: 'up_proj', down: 'down_proj' },
  sharedExpert: null,
  sharedExpertGate: null,
};

/** PEFT's default LoRA targets for Llama-like models. */
export const QV_TARGETS = ['q_proj', 'v_proj'] as const;

/**
 * Linears kept float by default: router rows (`gate`, moe-tune's null-expert rows `gate2`, `router`:
 * small, and routing is sensitive to them), the LM head and the embeddings.
 */
export const FLOAT_KEPT = ['gate', 'gate2', 'lm_head', 'embed_tokens', 'router'] as const;

export const LLAMA_DEFAULTS = {
  vocab_size: 32000, hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 32, num_attention_heads: 32,
  rms_norm_eps: 1e-6, rope_theta: 10000, max_position_embeddings: 2048, tie_word_embeddings: false,
  bos_token_id: 1, eos_token_id: 2,
} as const;

export const llama: ArchitectureLayout = {
  name: 'LlamaForCausalLM',
  modelType: 'llama',
  inTransformers: true,
  summary: 'Llama-2 / Llama-3.x dense decoder (attention / MLP bias, head_dim, rope linear / dynamic / llama3 / yarn)',
  defaults: LLAMA_DEFAULTS,
  read(c, where) {
    const k = readKeys(c, { attention_bias: z.boolean().optional(), mlp_bias: z.boolean().optional() }, where);
    return { attention: plainAttention(k.attention_bias ?? false, k.attention_bias ?? false), mlpBias: k.mlp_bias ?? false, moe: null };
  },
  names: LLAMA_NAMES,
  expertsKey: null,
  loraTargets: QV_TARGETS,
  quantSkip: FLOAT_KEPT,
};
