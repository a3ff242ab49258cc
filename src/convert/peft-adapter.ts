/**
 * PEFT adapter export / import for LoRA on an unchanged architecture. The directory is exactly
 * what PeftModel.save_pretrained writes: adapter_config.json and adapter_model.safetensors
 * (metadata {"format": "pt"}) with keys `base_model.model.<module path>.lora_A.weight` [r, in] and
 * `base_model.model.<module path>.lora_B.weight` [out, r] (our module paths are transformers'), so
 * `PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), dir)` loads it.
 *
 * Modules that trained in full next to the LoRA (a router `gate`, norms, embeddings: `trained` names their
 * parameters) go in as PEFT's modules_to_save, under PEFT's keys `base_model.model.<module path>.weight`, so
 * PEFT computes the trained model, not the base with the LoRA alone. transformers 5 names a Mixtral MoE block
 * `mlp` where transformers 4 (and the checkpoint) say `block_sparse_moe`: such modules are written under both
 * paths, and each version finds its own (the other is ignored).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  readJsonObject, SafetensorsFile, withAtomicDir, writeJsonAtomic, writeSafetensors, type FloatStorageDtype,
} from '../io/index.js';
import { layoutOf } from '../models/architectures/index.js';
import type { CausalLM } from '../models/causal-lm.js';
import { isTransformersNative } from '../models/remote-code.js';
import { shapeStr } from '../tensor/index.js';
import {
  applyLora, LoraLinear, moLoraLayers, noMatchError, selectLinears, type TargetPatterns,
} from '../lora/index.js';
import {
  parsePeftAdapterConfig, PEFT_CONFIG_FILE, PEFT_KEY_PREFIX, PEFT_WEIGHTS_FILE, peftAdapterConfig, peftTargetModules,
} from './peft-config.js';
import { importFusedPeftAdapter } from './peft-fused-import.js';


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
  /**
   * Names of every parameter that trained (the trainer's selection). Those outside the LoRA adapters are
   * saved whole as modules_to_save; when one cannot be (a LoRA-wrapped linear's own weight, an expert of a
   * fused transformers-5 MoE) the export refuses, saying why.
   */
  trained?: readonly string[] | null;
}

/** Module path and parameter name of a parameter key (`a.b.weight` -> [`a.b`, `weight`]). */
function splitParam(name: string): [string, string] {
  const i = name.lastIndexOf('.');
  return [name.slice(0, i), name.slice(i + 1)];
}

/**
 * The module paths of `trained` parameters outside the LoRA adapters (sorted), or the reason a PEFT adapter
 * cannot hold them.
 */
export function fullyTrainedModules(model: CausalLM, trained: readonly string[]): { modules: string[] } | { reason: string } {
  const loraPaths = loraModules(model).map(([p]) => p);
  const modules = new Set<string>();
  for (const name of trained) {
    if (/(^|\.)lora_(A|B)\.weight$/.test(name)) continue;
    const [mod] = splitParam(name);
    if (loraPaths.includes(mod)) return { reason: `${name} trained in full on a module that also has a LoRA adapter (PEFT cannot save both for one module)` };
    if (/\.experts\.\d+\./.test(mod) && layoutOf(model.config).transformers5?.fusedExperts) {
      return { reason: `${name} trained in full: transformers 5 fuses ${model.config.architecture}'s experts into one parameter, so PEFT cannot save one expert as a module` };
    }
    modules.add(mod);
  }
  return { modules: [...modules].sort() };
}

/** The transformers-5 path of a module when it differs (the layout's renames, e.g. Mixtral's `block_sparse_moe` is `mlp`), else null. */
function transformers5Path(model: CausalLM, modulePath: string): string | null {
  for (const [ours, theirs] of Object.entries(layoutOf(model.config).transformers5?.renames ?? {})) {
    if (modulePath.includes(`.${ours}.`)) return modulePath.replace(`.${ours}.`, `.${theirs}.`);
  }
  return null;
}

/** A router weight / bias saved under transformers 5's path (PEFT writes the router's copy there too). */
function isTransformers5RouterTensor(model: CausalLM, name: string): boolean {
  const l = layoutOf(model.config);
  const m = /^(.*)\.(weight|bias)$/.exec(name);
  return m !== null && Object.values(l.transformers5?.renames ?? {}).some((theirs) => m[1]!.endsWith(`.${theirs}.${l.names.router}`));
}

/** Our path of a key written under transformers 5's router path (the layout's renames reversed), or the key itself. */
function fromTransformers5Router(model: CausalLM, key: string): string {
  const l = layoutOf(model.config);
  for (const [ours, theirs] of Object.entries(l.transformers5?.renames ?? {})) {
    const t5 = `.${theirs}.${l.names.router}.`;
    if (key.includes(t5)) return key.replace(t5, `.${ours}.${l.names.router}.`);
  }
  return key;
}

export interface PeftExportResult {
  files: string[];
  /** Tensor keys written, in module order (A then B per module). */
  keys: string[];
  config: Record<string, unknown>;
  /** What the export changed so that PEFT on transformers 5 loads it (zero adapters, lora_dropout), for the user. */
  notes: string[];
}

function loraModules(model: CausalLM): [string, LoraLinear][] {
  return model.namedModules().filter((e): e is [string, LoraLinear] => e[1] instanceof LoraLinear);
}

/**
 * Why a PEFT adapter cannot express this trained model (null: it can): Mo-LoRA, surgery that changed the
 * architecture, a base transformers does not have, or a fully trained module PEFT cannot save.
 */
export function peftAdapterBlocker(model: CausalLM, trained: readonly string[] = []): string | null {
  const c = model.config;
  if (!c.extensions.lora || loraModules(model).length === 0) return `${c.architecture} has no LoRA adapters`;
  if (moLoraLayers(model).length > 0) return 'Mo-LoRA layers have no PEFT format';
  const others = Object.keys(c.extensions).filter((k) => k !== 'lora' && (c.extensions as Record<string, unknown>)[k] !== undefined);
  if (others.length > 0) return `surgery changed the architecture (moe_tune.${others.join(', moe_tune.')}), which a LoRA adapter on the base model cannot express`;
  if (!layoutOf(c).inTransformers) return `${c.architecture} is not a transformers architecture`;
  const full = fullyTrainedModules(model, trained);
  return 'reason' in full ? full.reason : null;
}

export async function exportPeftAdapter(model: CausalLM, dir: string, opts: PeftExportOptions = {}): Promise<PeftExportResult> {
  const where = 'exportPeftAdapter';
  const c = model.config;
  const lora = c.extensions.lora;
  const mods = loraModules(model);
  if (!lora || mods.length === 0) throw new Error(`${where}: ${c.architecture} has no LoRA adapters`);
  if (moLoraLayers(model).length > 0) throw new Error(`${where}: Mo-LoRA layers have no PEFT format; save the whole model with saveModel`);
  const others = Object.keys(c.extensions).filter((k) => k !== 'lora' && (c.extensions as Record<string, unknown>)[k] !== undefined);
  // PEFT's keys are the module paths: they load on the families transformers has (layout.inTransformers)
  if (!opts.remoteCodeBase && (others.length > 0 || !layoutOf(c).inTransformers)) {
    const what = others.length > 0 ? `has moe_tune.${others.join(', moe_tune.')}` : `is ${c.architecture}`;
    throw new Error(`${where}: a PEFT adapter needs an unchanged transformers architecture, but the model ${what}; save the whole model with saveModel instead`);
  }
  const merged = mods.filter(([, m]) => m.merged).map(([p]) => p);
  if (merged.length > 0) throw new Error(`${where}: ${merged[0]} is merged into its base weight; unmerge() before exporting the adapter`);
  const paths = mods.map(([p]) => p);
  let targetModules = peftTargetModules(lora.targets as TargetPatterns, paths);
  const exclude = (lora.exclude ?? null) as TargetPatterns | null;
  const layers = lora.layers && lora.layers.length > 0 ? lora.layers : null;
  const notes: string[] = [];
  // transformers 5 fuses a routed expert's projections into gate_up_proj and down_proj, and PEFT 0.21 there turns
  // expert targets into target_parameters: it refuses a LoRA on gate without up (Mixtral w1 without w3), and
  // computes a wrong function with gate_up_proj targeted but not down_proj (measured: NLL 1.7e-3 off). So when
  // any expert projection is a target, the missing ones are written with zero adapters (the same function).
  const fused = fusedExpertNames(model);
  let zeroPaths: string[] = [];
  if (fused && Array.isArray(targetModules)) {
    const names = targetModules as readonly string[];
    const all = [fused.gate, fused.up, fused.down];
    const missing = all.some((n) => names.includes(n)) ? all.filter((n) => !names.includes(n)) : [];
    if (missing.length > 0) {
      targetModules = [...names, ...missing].sort();
      zeroPaths = selectLinears(model, { targets: targetModules, exclude, layers }, where).map(([p]) => p).filter((p) => !paths.includes(p));
      const have = all.filter((n) => names.includes(n));
      notes.push(`LoRA on ${have.join(', ')} without ${missing.join(', ')}: transformers 5 fuses the experts (gate_up_proj, down_proj) and PEFT 0.21 needs all of ${all.join(', ')}, so ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} written with zero adapters (${zeroPaths.length} modules; the same function)`);
    }
  }
  const expertLora = fused !== null && paths.some((p) => fused.expertPath.test(p));
  let dropout = lora.dropout;
  if (expertLora && dropout > 0) {
    notes.push(`lora_dropout ${dropout} written as 0: PEFT 0.21 on transformers 5 wraps the fused experts in lora.ParamWrapper, which refuses dropout (inference is the same; set lora_dropout again to keep training with dropout)`);
    dropout = 0;
  }
  // PEFT must select exactly the adapted modules from this config
  const again = selectLinears(model, { targets: targetModules, exclude, layers }, where).map(([p]) => p).filter((p) => !zeroPaths.includes(p));
  if (again.length !== paths.length || again.some((p, i) => p !== paths[i])) {
    const extra = again.find((p) => !paths.includes(p)) ?? paths.find((p) => !again.includes(p));
    throw new Error(`${where}: target_modules ${JSON.stringify(targetModules)} would select a different set of modules than the adapted ones (e.g. ${extra})`);
  }
  const full = fullyTrainedModules(model, opts.trained ?? []);
  if ('reason' in full) throw new Error(`${where}: ${full.reason}; save the whole model with saveModel instead`);
  const saveNames = full.modules.flatMap((m) => [m, transformers5Path(model, m)].filter((x): x is string => x !== null)).sort();
  const config = peftAdapterConfig({
    r: lora.r,
    loraAlpha: lora.alpha,
    loraDropout: dropout,
    targetModules,
    excludeModules: exclude,
    layersToTransform: layers,
    useRslora: lora.rslora,
    baseModelNameOrPath: opts.baseModelNameOrPath ?? null,
    revision: opts.revision ?? null,
  });
  config['modules_to_save'] = saveNames.length > 0 ? saveNames : null;
  const dtype = opts.dtype ?? 'F32';
  const tensors = mods.flatMap(([p, m]) => [
    { name: `${PEFT_KEY_PREFIX}${p}.lora_A.weight`, dtype, shape: m.lora_A.weight.shape, data: Float32Array.from(m.lora_A.weight.f) },
    { name: `${PEFT_KEY_PREFIX}${p}.lora_B.weight`, dtype, shape: m.lora_B.weight.shape, data: Float32Array.from(m.lora_B.weight.f) },
  ]);
  const linears = new Map(selectLinears(model, { targets: zeroPaths.length ? zeroPaths : ['\0none'] }, where));
  for (const p of zeroPaths) {
    const l = linears.get(p)!;
    tensors.push({ name: `${PEFT_KEY_PREFIX}${p}.lora_A.weight`, dtype, shape: [lora.r, l.inFeatures], data: new Float32Array(lora.r * l.inFeatures) });
    tensors.push({ name: `${PEFT_KEY_PREFIX}${p}.lora_B.weight`, dtype, shape: [l.outFeatures, lora.r], data: new Float32Array(lora.r * l.outFeatures) });
  }
  const params = new Map(model.namedParameters());
  for (const m of full.modules) {
    for (const [name, t] of params) {
      const [mod, leaf] = splitParam(name);
      if (mod !== m) continue;
      for (const p of [m, transformers5Path(model, m)]) {
        if (p !== null) tensors.push({ name: `${PEFT_KEY_PREFIX}${p}.${leaf}`, dtype, shape: t.shape, data: Float32Array.from(t.f) });
      }
    }
  }
  await withAtomicDir(dir, (tmp) => {
    writeJsonAtomic(path.join(tmp, PEFT_CONFIG_FILE), config);
    writeSafetensors(path.join(tmp, PEFT_WEIGHTS_FILE), tensors, { format: 'pt' });
  }, { force: opts.force });
  return { files: [PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE], keys: tensors.map((t) => t.name), config, notes };
}

/**
 * For a MoE family transformers has (and fuses in transformers 5): the routed experts' gate and up projection
 * names and a pattern matching an expert's projection path; null otherwise.
 */
function fusedExpertNames(model: CausalLM): { gate: string; up: string; down: string; expertPath: RegExp } | null {
  const c = model.config;
  if (!c.moe || !isTransformersNative(c.architecture)) return null;
  const n = layoutOf(c).names;
  return { gate: n.expertProj.gate, up: n.expertProj.up, down: n.expertProj.down, expertPath: new RegExp(`\\.${n.experts}\\.\\d+\\.`) };
}

/** A transformers-5 PEFT adapter with target_parameters on fused MoE experts (see peft-fused-import.ts). */
function importTargetParameters(model: CausalLM, dir: string, raw: Record<string, unknown>, cfgPath: string): PeftImportResult {
  const wPath = path.join(dir, PEFT_WEIGHTS_FILE);
  if (!fs.existsSync(wPath)) throw new Error(`${wPath}: file not found`);
  if (model.config.extensions.lora) throw new Error(`importPeftAdapter: ${model.config.architecture} already has LoRA adapters`);
  if (raw['peft_type'] !== 'LORA') throw new Error(`${cfgPath}: field 'peft_type': ${JSON.stringify(raw['peft_type'])} is not supported (only "LORA")`);
  for (const key of ['use_dora', 'modules_to_save', 'layers_to_transform', 'exclude_modules']) {
    const v = raw[key];
    if (v !== null && v !== undefined && v !== false && !(Array.isArray(v) && v.length === 0)) throw new Error(`${cfgPath}: field '${key}': ${JSON.stringify(v)} is not supported with target_parameters`);
  }
  const num = (k: string, d: number): number => (typeof raw[k] === 'number' ? (raw[k] as number) : d);
  const tm = raw['target_modules'];
  const file = SafetensorsFile.open(wPath);
  try {
    const modules = importFusedPeftAdapter(model, file, {
      r: num('r', 8), alpha: num('lora_alpha', 8), rslora: raw['use_rslora'] === true,
      targetModules: Array.isArray(tm) ? (tm as string[]) : [],
      targetParameters: raw['target_parameters'] as string[],
      rankPattern: (raw['rank_pattern'] as Record<string, number> | null) ?? {},
      alphaPattern: (raw['alpha_pattern'] as Record<string, number> | null) ?? {},
    }, cfgPath);
    const base = raw['base_model_name_or_path'];
    return { modules, baseModelNameOrPath: typeof base === 'string' ? base : null };
  } finally {
    file.close();
  }
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
  const raw = readJsonObject(cfgPath);
  const tp = raw['target_parameters'];
  if (Array.isArray(tp) && tp.length > 0) return importTargetParameters(model, dir, raw, cfgPath);
  const opts = parsePeftAdapterConfig(raw, cfgPath);
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
  // modules_to_save: whole modules (weights that trained in full), by the model's own path or transformers 5's
  const params = new Map(model.namedParameters());
  const fullKeys = new Map<string, string>();
  const file = SafetensorsFile.open(wPath);
  try {
    for (const name of file.names()) {
      if (expected.has(name) || !name.startsWith(PEFT_KEY_PREFIX) || /\.lora_(A|B)\.weight$/.test(name)) continue;
      const key = name.slice(PEFT_KEY_PREFIX.length);
      const own = params.has(key) ? key : fromTransformers5Router(model, key);
      const t = params.get(own);
      if (!t) continue;
      if (own !== key && file.has(`${PEFT_KEY_PREFIX}${own}`)) continue; // the transformers-5 copy of a module also saved under our path
      const info = file.info(name);
      if (info.shape.length !== t.shape.length || info.shape.some((d, i) => d !== t.shape[i])) {
        throw new Error(`${wPath}: tensor '${name}' (modules_to_save) has shape ${shapeStr(info.shape)}, expected ${shapeStr(t.shape)}`);
      }
      fullKeys.set(name, own);
    }
    for (const name of file.names()) {
      if (fullKeys.has(name)) continue;
      if (!expected.has(name) && isTransformers5RouterTensor(model, name)) continue;
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
    for (const [name, own] of fullKeys) params.get(own)!.f.set(file.readFloat32(name));
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
