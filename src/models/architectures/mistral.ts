/** Mistral (transformers' models/mistral): Llama's math without biases; sequences past sliding_window are refused. */
import { z } from 'zod';
import { plainAttention, readKeys, refuse } from './config-keys.js';
import type { ArchitectureLayout } from './layout.js';
import { FLOAT_KEPT, LLAMA_DEFAULTS, LLAMA_NAMES, QV_TARGETS } from './llama.js';

/** Bias-free projections: Mistral-style modeling files build them with bias=False whatever the config says. */
export function refuseBiasKeys(c: Record<string, unknown>, where: string): void {
  const k = readKeys(c, { attention_bias: z.boolean().optional(), mlp_bias: z.boolean().optional() }, where);
  refuse(where, [
    k.attention_bias && 'attention_bias true (only bias-free attention projections are implemented)',
    k.mlp_bias && 'mlp_bias true (only bias-free MLP projections are implemented)',
  ]);
}

export const mistral: ArchitectureLayout = {
  name: 'MistralForCausalLM',
  modelType: 'mistral',
  inTransformers: true,
  summary: 'Mistral dense decoder (Llama math; sliding window refused past its length)',
  defaults: { ...LLAMA_DEFAULTS, rms_norm_eps: 1e-6, max_position_embeddings: 4096 * 32, num_key_value_heads: 8, intermediate_size: 14336 },
  read(c, where) {
    refuseBiasKeys(c, where);
    return { attention: plainAttention(), mlpBias: false, moe: null };
  },
  names: LLAMA_NAMES,
  expertsKey: null,
  loraTargets: QV_TARGETS,
  quantSkip: FLOAT_KEPT,
};
