/**
 * Qwen3 (transformers' models/qwen3): Llama with an RMSNorm on every head of q and k before rope
 * (`q_norm` / `k_norm`, weights [head_dim]), explicit head_dim (default 128), optional attention_bias.
 */
import { z } from 'zod';
import { plainAttention, qwenSlidingWindow, readKeys } from './config-keys.js';
import type { ArchitectureLayout } from './layout.js';
import { FLOAT_KEPT, LLAMA_NAMES, QV_TARGETS } from './llama.js';
import { QWEN2_DEFAULTS } from './qwen2.js';
import type { AttentionConfig } from '../config.js';

/** Qwen3's attention: per-head q / k RMSNorm, bias on all four projections when attention_bias. */
export function qwen3Attention(c: Record<string, unknown>, where: string): AttentionConfig {
  const k = readKeys(c, { attention_bias: z.boolean().optional() }, where);
  return { ...plainAttention(k.attention_bias ?? false, k.attention_bias ?? false), qkNorm: 'head' };
}

export const qwen3: ArchitectureLayout = {
  name: 'Qwen3ForCausalLM',
  modelType: 'qwen3',
  inTransformers: true,
  summary: 'Qwen3 dense decoder (per-head q / k RMSNorm, explicit head_dim)',
  defaults: { ...QWEN2_DEFAULTS, head_dim: 128, attention_bias: false },
  read: (c, where) => ({ attention: qwen3Attention(c, where), mlpBias: false, moe: null, slidingWindow: qwenSlidingWindow(c, where) }),
  names: LLAMA_NAMES,
  expertsKey: null,
  loraTargets: QV_TARGETS,
  quantSkip: FLOAT_KEPT,
};
