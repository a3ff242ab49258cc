/**
 * Turns a bench config's base model into the model the step trains: plain (all parameters),
 * AdaMoE (null experts, gate2 biased toward a target load), QLoRA (NF4 base + LoRA).
 */
import type { CausalLM } from '../src/models/causal-lm.js';
import type { BenchConfig } from './configs.js';

export interface PreparedVariant {
  /** The model whose trainable parameters the step updates. */
  model: CausalLM;
  /** The model whose weights PyTorch gets (the same model unless the variant changes weights). */
  torchModel?: CausalLM;
}

export async function prepareVariant(cfg: BenchConfig, model: CausalLM): Promise<PreparedVariant> {
  if (cfg.nullExperts || cfg.qlora) {
    throw new Error(`bench ${cfg.name}: this variant needs the surgery / quantisation modules, not wired yet`);
  }
  return { model };
}
