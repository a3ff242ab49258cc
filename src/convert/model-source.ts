/**
 * A WeightSource reading from an existing model (conversions build a new model from an old one's
 * tensors by Hugging Face key), and cloneModel built on it.
 */
import { buildCausalLM } from '../models/build.js';
import type { CausalLM } from '../models/causal-lm.js';
import type { ModelConfig } from '../models/config.js';
import type { WeightSource } from '../models/weight-source.js';
import { shapeStr, Tensor } from '../tensor/index.js';
import '../lora/index.js';

/**
 * Copies of the model's tensors by key; `override(name)` may supply other data for a key (same
 * shape). A key the model lacks is one clear error.
 */
export function modelWeightSource(model: CausalLM, override?: (name: string) => Float32Array | Float64Array | null): WeightSource {
  const params = model.parameters();
  return {
    has: (name) => params.has(name),
    get(name, shape) {
      const t = params.get(name);
      if (!t) throw new Error(`${model.config.architecture}: no tensor '${name}' (expected shape ${shapeStr(shape)})`);
      if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
        throw new Error(`${model.config.architecture}: tensor '${name}' has shape ${shapeStr(t.shape)}, expected ${shapeStr(shape)}`);
      }
      const data = override?.(name) ?? t.f.slice();
      return Tensor.param(data, shape, name);
    },
  };
}

/** A deep copy of a model (same config, router and adapters; copied tensors). */
export function cloneModel(model: CausalLM, config: ModelConfig = model.config, override?: (name: string) => Float32Array | Float64Array | null): CausalLM {
  const router = model.moeBlocks()[0]?.router;
  const copy = buildCausalLM(config, modelWeightSource(model, override), router && config.moe ? { router } : {});
  // keep which parameters train
  const flags = new Map(model.namedParameters().map(([n, t]) => [n, t.requiresGrad]));
  for (const [n, t] of copy.namedParameters()) {
    const f = flags.get(n);
    if (f !== undefined) t.requiresGrad = f;
  }
  return copy;
}
