/**
 * Qwen2 / Qwen2.5 (transformers' models/qwen2): Llama with a bias on q / k / v (always; o_proj has
 * none), sliding window only with use_sliding_window.
 */
import { FLOAT_KEPT, LLAMA_NAMES, QV_TARGETS } from './llama.js';
import { plainAttention, qwenSlidingWindow } from './config-keys.js';
import type { ArchitectureLayout } from './layout.js';

/** transformers' Qwen2Config defaults (rope_theta: transformers' default_theta). */
export const QWEN2_DEFAULTS = {
  vocab_size: 151936, hidden_size: 4096, intermediate_size: 22016, num_hidden_layers: 32, num_attention_heads: 32,
  num_key_value_heads: 32, rms_norm_eps: 1e-6, rope_theta: 10000, max_position_embeddings: 32768, tie_word_embeddings: false,
  bos_token_id: null, eos_token_id: null, use_sliding_window: false, sliding_window: 4096, max_window_layers: 28,
} as const;

export const qwen2: ArchitectureLayout = {
  name: 'Qwen2ForCausalLM',
  modelType: 'qwen2',
  inTransformers: true,
  summary: 'Qwen2 / Qwen2.5 dense decoder (q / k / v bias)',
  defaults: QWEN2_DEFAULTS,
  read: (c, where) => ({ attention: plainAttention(true, false), mlpBias: false, moe: null, slidingWindow: qwenSlidingWindow(c, where) }),
  names: LLAMA_NAMES,
  expertsKey: null,
  loraTargets: QV_TARGETS,
  quantSkip: FLOAT_KEPT,
};
