/**
 * mergeLora: a new model with every LoRA adapter folded into its base weight
 * (W' = W + scaling B A) and the LoRA modules gone. On an unchanged architecture the result is a
 * plain Llama / Mixtral whose saved checkpoint transformers loads (no moe_tune keys); on a
 * surgered one (e.g. AdaMoE null experts with LoRA on gate / gate2 / w1-w3) only the LoRA part is
 * folded and the other moe_tune keys stay. Mo-LoRA experts are routed per token and cannot be
 * folded into a weight.
 */
import type { CausalLM } from '../models/causal-lm.js';
import { configFromJson } from '../models/create.js';
import { Linear } from '../models/linear.js';
import { saveModel, type SaveOptions } from '../models/save.js';
import { LoraLinear, moLoraLayers } from '../lora/index.js';
import { modelConfigJson, moeTuneOf } from '../models/config-edit.js';
import { cloneModel } from './model-source.js';

export function mergeLora(model: CausalLM): CausalLM {
  if (moLoraLayers(model).length > 0) {
    throw new Error('mergeLora: the model has Mo-LoRA layers; their experts are routed per token and cannot be folded into the base weights');
  }
  const loras = model.namedModules().filter((e): e is [string, LoraLinear] => e[1] instanceof LoraLinear);
  if (loras.length === 0) throw new Error(`mergeLora: ${model.config.architecture} has no LoRA adapters`);
  const merged = new Map<string, Float32Array | Float64Array>();
  for (const [path, lora] of loras) {
    if (!(lora.base instanceof Linear)) {
      throw new Error(`mergeLora: ${path} wraps a ${lora.base.constructor.name}, not a plain Linear (dequantise it first)`);
    }
    const data = lora.base.weight.f.slice();
    if (!lora.merged) {
      const d = lora.deltaWeight();
      for (let i = 0; i < data.length; i++) data[i] = data[i]! + d[i]!;
    }
    merged.set(`${path}.weight`, data);
  }
  const json = modelConfigJson(model);
  delete moeTuneOf(json)['lora'];
  if (Object.keys(moeTuneOf(json)).length === 0) delete json['moe_tune'];
  const config = configFromJson(json, 'mergeLora: config');
  const out = cloneModel(model, config, (name) => merged.get(name) ?? null);
  for (const t of out.parameters().values()) t.requiresGrad = true;
  return out;
}

/** mergeLora then saveModel: an ordinary Hugging Face checkpoint when the architecture is plain. */
export async function saveMergedModel(model: CausalLM, dir: string, opts: SaveOptions = {}): Promise<CausalLM> {
  const merged = mergeLora(model);
  await saveModel(merged, dir, opts);
  return merged;
}
