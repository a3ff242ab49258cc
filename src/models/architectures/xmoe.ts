/**
 * XMoE (moe-tune's own: a dense Llama decomposed into small experts, paper 001) in Mixtral's tensor
 * layout; the expert width, the MoE layers, the output scale and the router come from moe_tune keys.
 */
import type { ArchitectureLayout } from './layout.js';
import { FLOAT_KEPT, LLAMA_DEFAULTS, QV_TARGETS } from './llama.js';
import { MIXTRAL_NAMES, mixtralMoe } from './mixtral.js';
import { refuseBiasKeys } from './mistral.js';
import { plainAttention } from './config-keys.js';

export const xmoe: ArchitectureLayout = {
  name: 'XMoEForCausalLM',
  modelType: 'xmoe',
  inTransformers: false,
  summary: 'moe-tune: a dense Llama decomposed into small experts (paper 001), Mixtral tensor layout',
  defaults: { ...LLAMA_DEFAULTS, router_aux_loss_coef: 0.01 },
  read(c, where) {
    refuseBiasKeys(c, where);
    return { attention: plainAttention(), mlpBias: false, moe: mixtralMoe(c, where) };
  },
  names: MIXTRAL_NAMES,
  expertsKey: 'num_local_experts',
  loraTargets: QV_TARGETS,
  quantSkip: FLOAT_KEPT,
};
