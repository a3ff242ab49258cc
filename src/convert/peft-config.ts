/**
 * PEFT's adapter_config.json for a LoRA adapter: what we write (the complete field set of PEFT
 * 0.20.0's LoraConfig.to_dict(), as PeftModel.save_pretrained writes it: inference_mode true, keys
 * sorted) and what we accept on import (plain LoRA; every option that changes the math, and that
 * we do not implement, is refused by name).
 */
import { ALL_LINEAR, type LoraOptions, type TargetPatterns } from '../lora/index.js';

export const PEFT_CONFIG_FILE = 'adapter_config.json';
export const PEFT_WEIGHTS_FILE = 'adapter_model.safetensors';
/** The PEFT release whose adapter_config.json field set we write (recorded as peft_version). */
export const PEFT_FORMAT_VERSION = '0.20.0';
/** Key prefix of a PeftModelForCausalLM state dict (PeftModel.base_model = LoraModel, .model = the LM). */
export const PEFT_KEY_PREFIX = 'base_model.model.';

export interface PeftConfigFields {
  r: number;
  loraAlpha: number;
  loraDropout: number;
  targetModules: readonly string[] | string;
  excludeModules: readonly string[] | string | null;
  layersToTransform: readonly number[] | null;
  useRslora: boolean;
  baseModelNameOrPath: string | null;
  revision: string | null;
}

/** adapter_config.json content (keys sorted, as PEFT writes it with sort_keys=True). */
export function peftAdapterConfig(f: PeftConfigFields): Record<string, unknown> {
  const cfg: Record<string, unknown> = {
    alora_invocation_tokens: null,
    alpha_pattern: {},
    arrow_config: null,
    auto_mapping: null,
    base_model_name_or_path: f.baseModelNameOrPath,
    bias: 'none',
    corda_config: null,
    ensure_weight_tying: false,
    eva_config: null,
    exclude_modules: f.excludeModules === null ? null : typeof f.excludeModules === 'string' ? f.excludeModules : [...f.excludeModules],
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: f.layersToTransform === null ? null : [...f.layersToTransform],
    loftq_config: {},
    lora_alpha: f.loraAlpha,
    lora_bias: false,
    lora_dropout: f.loraDropout,
    lora_ga_config: null,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: null,
    monteclora_config: null,
    peft_type: 'LORA',
    peft_version: PEFT_FORMAT_VERSION,
    qalora_group_size: 16,
    r: f.r,
    rank_pattern: {},
    revision: f.revision,
    target_modules: typeof f.targetModules === 'string' ? f.targetModules : [...f.targetModules],
    target_parameters: null,
    task_type: 'CAUSAL_LM',
    trainable_token_indices: null,
    use_bdlora: null,
    use_dora: false,
    use_qalora: false,
    use_rslora: f.useRslora,
    velora_config: null,
  };
  return Object.fromEntries(Object.entries(cfg).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function isEmpty(v: unknown): boolean {
  if (v === null || v === undefined || v === false) return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === 'object') return Object.keys(v as object).length === 0;
  return false;
}

/** Options that change the adapter's math and that we do not implement: must be absent, null, false or empty. */
const UNSUPPORTED_OPTIONS: readonly string[] = [
  'use_dora', 'fan_in_fan_out', 'rank_pattern', 'alpha_pattern', 'layer_replication', 'lora_bias',
  'use_qalora', 'target_parameters', 'trainable_token_indices', 'alora_invocation_tokens', 'use_bdlora', 'arrow_config',
  'megatron_config', 'velora_config', 'monteclora_config',
];

function patterns(v: unknown, field: string, where: string): TargetPatterns {
  if (typeof v === 'string' && v !== '') return v;
  if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string' && x !== '')) return v as string[];
  throw new Error(`${where}: field '${field}': expected a non-empty list of module names or a regex string, got ${JSON.stringify(v)}`);
}

/** Validates an adapter_config.json object into LoRA options; `where` names the file. */
export function parsePeftAdapterConfig(raw: Record<string, unknown>, where: string): LoraOptions & { baseModelNameOrPath: string | null } {
  const type = raw['peft_type'];
  if (type !== 'LORA') throw new Error(`${where}: field 'peft_type': ${JSON.stringify(type)} is not supported (only "LORA")`);
  const task = raw['task_type'];
  if (task !== undefined && task !== null && task !== 'CAUSAL_LM') throw new Error(`${where}: field 'task_type': ${JSON.stringify(task)} is not supported (only "CAUSAL_LM")`);
  const r = raw['r'];
  if (typeof r !== 'number' || !Number.isInteger(r) || r < 1) throw new Error(`${where}: field 'r': expected a positive integer, got ${JSON.stringify(r)}`);
  const alpha = raw['lora_alpha'] ?? 8;
  if (typeof alpha !== 'number' || !(alpha > 0)) throw new Error(`${where}: field 'lora_alpha': expected a positive number, got ${JSON.stringify(alpha)}`);
  const dropout = raw['lora_dropout'] ?? 0;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) throw new Error(`${where}: field 'lora_dropout': expected a number in [0, 1), got ${JSON.stringify(dropout)}`);
  const bias = raw['bias'] ?? 'none';
  if (bias !== 'none') throw new Error(`${where}: field 'bias': ${JSON.stringify(bias)} is not supported (only "none")`);
  for (const key of UNSUPPORTED_OPTIONS) {
    if (!isEmpty(raw[key])) throw new Error(`${where}: field '${key}': ${JSON.stringify(raw[key])} is not supported (moe-tune imports plain LoRA adapters)`);
  }
  const rslora = raw['use_rslora'] ?? false;
  if (typeof rslora !== 'boolean') throw new Error(`${where}: field 'use_rslora': expected true or false, got ${JSON.stringify(rslora)}`);
  if (raw['target_modules'] === null || raw['target_modules'] === undefined) {
    throw new Error(`${where}: field 'target_modules' is missing (PEFT's per-architecture defaults are not supported; list the modules)`);
  }
  const targets = patterns(raw['target_modules'], 'target_modules', where);
  const exclude = raw['exclude_modules'] === null || raw['exclude_modules'] === undefined ? null : patterns(raw['exclude_modules'], 'exclude_modules', where);
  let layers: number[] | null = null;
  const ltt = raw['layers_to_transform'];
  if (ltt !== null && ltt !== undefined) {
    const list = typeof ltt === 'number' ? [ltt] : ltt;
    if (!Array.isArray(list) || !list.every((x) => Number.isInteger(x) && x >= 0)) {
      throw new Error(`${where}: field 'layers_to_transform': expected a layer index or a list of them, got ${JSON.stringify(ltt)}`);
    }
    layers = list as number[];
  }
  const lp = raw['layers_pattern'];
  const lpOk = lp === null || lp === undefined || lp === 'layers' || (Array.isArray(lp) && (lp.length === 0 || (lp.length === 1 && lp[0] === 'layers')));
  if (!lpOk) throw new Error(`${where}: field 'layers_pattern': ${JSON.stringify(lp)} is not supported (Llama / Mixtral layers are 'layers')`);
  const base = raw['base_model_name_or_path'];
  return {
    r, alpha, dropout, rslora, targets, exclude, layers,
    baseModelNameOrPath: typeof base === 'string' ? base : null,
  };
}

/** target_modules for a config's targets: names sorted (PEFT stores a set), a regex as is, 'all-linear' resolved. */
export function peftTargetModules(targets: TargetPatterns, wrappedPaths: readonly string[]): readonly string[] | string {
  if (typeof targets === 'string' && targets !== ALL_LINEAR) return targets;
  const names = targets === ALL_LINEAR ? wrappedPaths.map((p) => p.slice(p.lastIndexOf('.') + 1)) : [...targets];
  return [...new Set(names)].sort();
}
