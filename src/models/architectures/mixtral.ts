/**
 * Mixtral (transformers' models/mixtral): Mistral attention, a sparse MoE FFN in every layer
 * (`block_sparse_moe`: router `gate`, experts `w1` / `w3` / `w2`), softmax top-k renormalised.
 */
import { z } from 'zod';
import { plainAttention, positiveInt, readKeys, refuse, softmaxTopK } from './config-keys.js';
import type { ArchitectureLayout, FamilyMoeConfig, ModuleNames } from './layout.js';
import { FLOAT_KEPT, LLAMA_NAMES, QV_TARGETS } from './llama.js';
import { refuseBiasKeys } from './mistral.js';

export const MIXTRAL_NAMES: ModuleNames = {
  ...LLAMA_NAMES,
  moe: 'block_sparse_moe',
  expertProj: { gate: 'w1', down: 'w2', up: 'w3' },
};

export const MIXTRAL_DEFAULTS = {
  vocab_size: 32000, hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32, num_attention_heads: 32,
  num_key_value_heads: 8, rms_norm_eps: 1e-5, rope_theta: 1e6, max_position_embeddings: 4096 * 32,
  tie_word_embeddings: false, bos_token_id: 1, eos_token_id: 2, num_local_experts: 8, num_experts_per_tok: 2,
  router_aux_loss_coef: 0.001,
} as const;

/** Mixtral's MoE keys: every layer sparse, experts as wide as intermediate_size, top-k renormalised. */
export function mixtralMoe(c: Record<string, unknown>, where: string): FamilyMoeConfig {
  const k = readKeys(c, {
    num_local_experts: positiveInt,
    num_experts_per_tok: positiveInt,
    router_aux_loss_coef: z.number().nonnegative(),
    router_jitter_noise: z.number().nonnegative().optional(),
    num_hidden_layers: positiveInt,
    intermediate_size: positiveInt,
  }, where);
  refuse(where, [(k.router_jitter_noise ?? 0) > 0 && `router_jitter_noise ${k.router_jitter_noise} (only 0 is implemented)`]);
  return {
    numExperts: k.num_local_experts,
    topK: k.num_experts_per_tok,
    routerAuxLossCoef: k.router_aux_loss_coef,
    expertIntermediateSize: k.intermediate_size,
    layers: Array.from({ length: k.num_hidden_layers }, (_, i) => i),
    router: softmaxTopK(k.num_experts_per_tok, true),
    routedScale: 1,
    sharedExpert: null,
  };
}

export const mixtral: ArchitectureLayout = {
  name: 'MixtralForCausalLM',
  modelType: 'mixtral',
  inTransformers: true,
  summary: 'Mixtral sparse MoE decoder',
  defaults: MIXTRAL_DEFAULTS,
  read(c, where) {
    refuseBiasKeys(c, where);
    return { attention: plainAttention(), mlpBias: false, moe: mixtralMoe(c, where) };
  },
  names: MIXTRAL_NAMES,
  transformers5: { renames: { block_sparse_moe: 'mlp' }, fusedExperts: true },
  expertsKey: 'num_local_experts',
  loraTargets: QV_TARGETS,
  quantSkip: FLOAT_KEPT,
};
