/**
 * Layers defined above the models floor (LoRA and Mo-LoRA in src/lora, a user's own) that a config
 * asks for with a moe_tune key: an open registry. A module registers its extension when imported;
 * buildCausalLM runs every registered extension whose key the config has, in `order`, on the
 * finished model, reading their tensors from the same WeightSource (so loadModel checks their names
 * and shapes, and counts them as used). A moe_tune key that is neither read by the model builder
 * nor registered is a clear error.
 */
import type { CausalLM } from './causal-lm.js';
import type { ModelConfig } from './config.js';
import type { WeightSource } from './weight-source.js';

export interface LayerExtension {
  /** The moe_tune key that asks for these layers. */
  key: string;
  /** Build order among the extensions a config has (lower first; ties: registration order). */
  order?: number;
  build(model: CausalLM, config: ModelConfig, src: WeightSource): void;
}

/** moe_tune keys the model builder itself reads (router rows, expert widths, routers). */
export const MODEL_CONFIG_KEYS: ReadonlySet<string> = new Set(['router', 'null_experts', 'ternary', 'gate_scale', 'expert_intermediate_size', 'moe_layers']);

const registry = new Map<string, LayerExtension>();

export function registerLayerExtension(ext: LayerExtension): void {
  if (MODEL_CONFIG_KEYS.has(ext.key)) throw new Error(`registerLayerExtension: moe_tune.${ext.key} is read by the model builder, not an extension key`);
  registry.set(ext.key, ext);
}

/** The registered extensions (in build order). */
export function layerExtensions(): LayerExtension[] {
  const all = [...registry.values()];
  return all.map((e, i) => ({ e, i })).sort((a, b) => (a.e.order ?? 0) - (b.e.order ?? 0) || a.i - b.i).map(({ e }) => e);
}

/** Builds the extension layers the config asks for; throws naming the key when one is not registered. */
export function buildLayerExtensions(model: CausalLM, config: ModelConfig, src: WeightSource): void {
  for (const key of Object.keys(config.extensions)) {
    if (MODEL_CONFIG_KEYS.has(key) || config.extensions[key] === undefined || registry.has(key)) continue;
    throw new Error(`${config.architecture}: config key moe_tune.${key} needs a layer extension that is not registered (registered: ${[...registry.keys()].join(', ') || 'none'}); import 'moe-tune' (its LoRA / Mo-LoRA layers register themselves) or the module that registers '${key}' before building or loading this model`);
  }
  for (const ext of layerExtensions()) {
    if (config.extensions[ext.key] === undefined) continue;
    ext.build(model, config, src);
  }
}
