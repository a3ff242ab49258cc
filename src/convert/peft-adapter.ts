/**
 * PEFT adapter export / import for LoRA on an unchanged architecture. The directory is exactly
 * what PeftModel.save_pretrained writes: adapter_config.json and adapter_model.safetensors
 * (metadata {"format": "pt"}) with keys `base_model.model.<module path>.lora_A.weight` [r, in] and
 * `base_model.model.<module path>.lora_B.weight` [out, r] (our module paths are transformers'), so
 * `PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), dir)` loads it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  readJsonObject, SafetensorsFile, withAtomicDir, writeJsonAtomic, writeSafetensors, type FloatStorageDtype,
} from '../io/index.js';
import type { CausalLM } from '../models/causal-lm.js';
import { shapeStr } from '../tensor/index.js';
import {
  applyLora, LoraLinear, moLoraLayers, noMatchError, selectLinears, type TargetPatterns,
} from '../lora/index.js';
import {
  parsePeftAdapterConfig, PEFT_CONFIG_FILE, PEFT_KEY_PREFIX, PEFT_WEIGHTS_FILE, peftAdapterConfig, peftTargetModules,
} from './peft-config.js';

/** Architectures transformers loads under the same module paths (PEFT's keys are those paths). */
const TRANSFORMERS_ARCHITECTURES = ['LlamaForCausalLM', 'MistralForCausalLM', 'MixtralForCausalLM'];

export interface PeftExportOptions {
  /** `base_model_name_or_path` in adapter_config.json (a Hub id or a local directory). */
  baseModelNameOrPath?: string | null;
  revision?: string | null;
  /** Storage dtype of the adapter tensors (default F32). */
  dtype?: FloatStorageDtype;
  /** Replace a non-empty directory. */
  force?: boolean;
  /**
   * The adapter goes on moe-tune's remote-code checkpoint of this model (export-job), whose module paths are
   * moe-tune's: surgery extensions and architectures beyond transformers' own are then allowed.
   */
  remoteCodeBase?: boolean;
}

export interface PeftExportResult {
  files: string[];
  /** Tensor keys written, in module order (A then B per module). */
  keys: string[];
  config: Record<string, unknown>;
}

function loraModules(model: CausalLM): [string, LoraLinear][] {
  return model.namedModules().filter((e): e is [string, LoraLinear] => e[1] instanceof LoraLinear);
}

export async function exportPeftAdapter(model: CausalLM, dir: string, opts: PeftExportOptions = {}): Promise<PeftExportResult> {
  const where = 'exportPeftAdapter';
  const c = model.config;
  const lora = c.extensions.lora;
  const mods = loraModules(model);
  if (!lora || mods.length === 0) throw new Error(`${where}: ${c.architecture} has no LoRA adapters`);
  if (moLoraLayers(model).length > 0) throw new Error(`${where}: Mo-LoRA layers have no PEFT format; save the whole model with saveModel`);
  const others = Object.keys(c.extensions).filter((k) => k !== 'lora' && (c.extensions as Record<string, unknown>)[k] !== undefined);
  if (!opts.remoteCodeBase && (others.length > 0 || !TRANSFORMERS_ARCHITECTURES.includes(c.architecture))) {
    const what = others.length > 0 ? `has moe_tune.${others.join(', moe_tune.')}` : `is ${c.architecture}`;
    throw new Error(`${where}: a PEFT adapter needs an unchanged transformers architecture, but the model ${what}; save the whole model with saveModel instead`);
  }
  const merged = mods.filter(([, m]) => m.merged).map(([p]) => p);
  if (merged.length > 0) throw new Error(`${where}: ${merged[0]} is merged into its base weight; unmerge() before exporting the adapter`);
  const paths = mods.map(([p]) => p);
  const targetModules = peftTargetModules(lora.targets as TargetPatterns, paths);
  const exclude = (lora.exclude ?? null) as TargetPatterns | null;
  const layers = lora.layers && lora.layers.length > 0 ? lora.layers : null;
  // PEFT must select exactly the adapted modules from this config
  const again = selectLinears(model, { targets: targetModules, exclude, layers }, where).map(([p]) => p);
  if (again.length !== paths.length || again.some((p, i) => p !== paths[i])) {
    const extra = again.find((p) => !paths.includes(p)) ?? paths.find((p) => !again.includes(p));
    throw new Error(`${where}: target_modules ${JSON.stringify(targetModules)} would select a different set of modules than the adapted ones (e.g. ${extra})`);
  }
  const config = peftAdapterConfig({
    r: lora.r,
    loraAlpha: lora.alpha,
    loraDropout: lora.dropout,
    targetModules,
    excludeModules: exclude,
    layersToTransform: layers,
    useRslora: lora.rslora,
    baseModelNameOrPath: opts.baseModelNameOrPath ?? null,
    revision: opts.revision ?? null,
  });
  const dtype = opts.dtype ?? 'F32';
  const tensors = mods.flatMap(([p, m]) => [
    { name: `${PEFT_KEY_PREFIX}${p}.lora_A.weight`, dtype, shape: m.lora_A.weight.shape, data: Float32Array.from(m.lora_A.weight.f) },
    { name: `${PEFT_KEY_PREFIX}${p}.lora_B.weight`, dtype, shape: m.lora_B.weight.shape, data: Float32Array.from(m.lora_B.weight.f) },
  ]);
  await withAtomicDir(dir, (tmp) => {
    writeJsonAtomic(path.join(tmp, PEFT_CONFIG_FILE), config);
    writeSafetensors(path.join(tmp, PEFT_WEIGHTS_FILE), tensors, { format: 'pt' });
  }, { force: opts.force });
  return { files: [PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE], keys: tensors.map((t) => t.name), config };
}

export interface PeftImportResult {
  /** Paths of the adapted linears. */
  modules: string[];
  baseModelNameOrPath: string | null;
}

/**
 * Applies a PEFT LoRA adapter to `model` (which must not have LoRA yet): LoRA with the adapter's
 * config on the modules its target_modules select, then its weights. Everything is checked before
 * the model is touched: a tensor that matches no adapted module, a module without its tensors, a
 * shape mismatch, an unsupported peft_type or option are each a one-line error naming the file.
 */
export function importPeftAdapter(model: CausalLM, dir: string): PeftImportResult {
  const cfgPath = path.join(dir, PEFT_CONFIG_FILE);
  const wPath = path.join(dir, PEFT_WEIGHTS_FILE);
  if (!fs.existsSync(cfgPath)) throw new Error(`${cfgPath}: file not found (not a PEFT adapter directory)`);
  const opts = parsePeftAdapterConfig(readJsonObject(cfgPath), cfgPath);
  if (!fs.existsSync(wPath)) {
    const bin = path.join(dir, 'adapter_model.bin');
    throw new Error(fs.existsSync(bin)
      ? `${bin}: pickle adapters are not supported; save the adapter with safe_serialization=True (adapter_model.safetensors)`
      : `${wPath}: file not found`);
  }
  if (model.config.extensions.lora) throw new Error(`importPeftAdapter: ${model.config.architecture} already has LoRA adapters`);
  const selected = selectLinears(model, opts, cfgPath);
  if (selected.length === 0) throw noMatchError(model, opts, cfgPath);
  const expected = new Map<string, readonly number[]>();
  for (const [p, m] of selected) {
    expected.set(`${PEFT_KEY_PREFIX}${p}.lora_A.weight`, [opts.r, m.inFeatures]);
    expected.set(`${PEFT_KEY_PREFIX}${p}.lora_B.weight`, [m.outFeatures, opts.r]);
  }
  const file = SafetensorsFile.open(wPath);
  try {
    for (const name of file.names()) {
      const shape = expected.get(name);
      if (!shape) {
        const hint = name.startsWith(PEFT_KEY_PREFIX) ? 'matches no module that target_modules selects' : `does not start with '${PEFT_KEY_PREFIX}'`;
        throw new Error(`${wPath}: tensor '${name}' ${hint} in ${model.config.architecture}`);
      }
      const info = file.info(name);
      if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
        throw new Error(`${wPath}: tensor '${name}' has shape ${shapeStr(info.shape)}, expected ${shapeStr(shape)}`);
      }
    }
    for (const name of expected.keys()) {
      if (!file.has(name)) throw new Error(`${wPath}: missing tensor '${name}' (target_modules selects its module)`);
    }
    const res = applyLora(model, opts);
    for (const p of res.modules) {
      const m = model.getModule(p) as LoraLinear;
      m.lora_A.weight.f.set(file.readFloat32(`${PEFT_KEY_PREFIX}${p}.lora_A.weight`));
      m.lora_B.weight.f.set(file.readFloat32(`${PEFT_KEY_PREFIX}${p}.lora_B.weight`));
    }
    return { modules: res.modules, baseModelNameOrPath: opts.baseModelNameOrPath };
  } finally {
    file.close();
  }
}
