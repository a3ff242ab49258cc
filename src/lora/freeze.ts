/**
 * Which parameters train once adapters are on: the adapters' own (LoRA A/B, Mo-LoRA routers and
 * experts); everything else is frozen (requiresGrad false), as PEFT freezes the base model.
 */
import type { CausalLM } from '../models/causal-lm.js';
import type { Tensor } from '../tensor/index.js';
import { isAdapterWrapper } from './target-match.js';

/** The adapter tensors of the model (LoRA and Mo-LoRA), by identity. */
export function adapterTensors(model: CausalLM): Set<Tensor> {
  const out = new Set<Tensor>();
  for (const [, m] of model.namedModules()) {
    if (isAdapterWrapper(m)) for (const t of m.adapterParameters()) out.add(t);
  }
  return out;
}

/** Freezes every parameter that is not an adapter tensor; adapter tensors require grad. */
export function freezeAllButAdapters(model: CausalLM): void {
  const adapters = adapterTensors(model);
  for (const [, t] of model.namedParameters()) t.requiresGrad = adapters.has(t);
}

/** The parameters that train (requiresGrad), by name, in model order (tied weights once). */
export function trainableParameters(model: CausalLM): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  const seen = new Set<Tensor>();
  for (const [name, t] of model.namedParameters()) {
    if (!t.requiresGrad || seen.has(t)) continue;
    seen.add(t);
    out.set(name, t);
  }
  return out;
}

/** Total element count of a set of parameters. */
export function countParameters(params: Iterable<Tensor>): number {
  let n = 0;
  for (const t of params) n += t.size;
  return n;
}
