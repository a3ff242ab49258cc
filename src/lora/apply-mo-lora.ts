/**
 * Mo-LoRA surgery (AdaMoE on dense models, paper 004 §4.1): on each target linear a random router
 * and n LoRA experts (B = 0, so the model is unchanged at step 0), top-k routing, optionally with
 * null experts (m5k4 etc.). Recorded in the config as `moe_tune.mo_lora`; everything but the
 * adapters is frozen.
 */
import type { CausalLM } from '../models/causal-lm.js';
import type { WeightSource } from '../models/weight-source.js';
import { createRouter } from '../routers/registry.js';
import type { Router } from '../routers/router.js';
import { Rng, Tensor } from '../tensor/index.js';
import type { AppliedAdapters } from './apply-lora.js';
import { editModelConfig, moeTuneOf } from '../models/config-edit.js';
import { countParameters, freezeAllButAdapters } from './freeze.js';
import { LoraLinear, linearDtype, type LoraHyper } from './lora-linear.js';
import { LoraExpert, MoLoraLinear, routerInit } from './mo-lora-linear.js';
import { noMatchError, selectLinears, targetsText, type TargetPatterns } from './target-match.js';

/** Paper 004's Mo-LoRA defaults: 4 LoRA experts of rank 8 on the attention and MLP projections. */
export const MO_LORA_DEFAULT_TARGETS: readonly string[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

export interface MoLoraOptions {
  targets?: TargetPatterns;
  /** LoRA experts per linear (default 4). */
  experts?: number;
  r?: number;
  alpha?: number;
  dropout?: number;
  /** Experts per token (default 2). */
  topK?: number;
  /** Null experts (default 0). */
  nullExperts?: number;
  seed?: number;
  rng?: Rng;
}

export interface MoLoraSettings extends LoraHyper {
  targets: TargetPatterns;
  experts: number;
  topK: number;
  nullExperts: number;
}

export function moLoraSettings(opts: MoLoraOptions): MoLoraSettings {
  return {
    targets: opts.targets ?? MO_LORA_DEFAULT_TARGETS,
    experts: opts.experts ?? 4,
    r: opts.r ?? 8,
    alpha: opts.alpha ?? 16,
    dropout: opts.dropout ?? 0,
    topK: opts.topK ?? 2,
    nullExperts: opts.nullExperts ?? 0,
  };
}

/** Checks the expert counts; one line naming the bad value. */
export function checkMoLoraCounts(s: { experts: number; topK: number; nullExperts: number }, where: string): void {
  if (!Number.isInteger(s.experts) || s.experts < 1) throw new Error(`${where}: experts must be a positive integer, got ${s.experts}`);
  if (!Number.isInteger(s.nullExperts) || s.nullExperts < 0) throw new Error(`${where}: null experts must be a non-negative integer, got ${s.nullExperts}`);
  if (!Number.isInteger(s.topK) || s.topK < 1) throw new Error(`${where}: top_k must be a positive integer, got ${s.topK}`);
  if (s.topK > s.experts + s.nullExperts) {
    throw new Error(`${where}: top_k ${s.topK} is more than the ${s.experts} experts${s.nullExperts ? ` + ${s.nullExperts} null experts` : ''}`);
  }
}

/** The router of a Mo-LoRA layer: top-k, or AdaMoE's null-experts router (zero mapping) when m > 0. */
export function moLoraRouter(topK: number, nullExperts: number): Router {
  return nullExperts > 0
    ? createRouter({ name: 'null-experts', k: topK, m: nullExperts, mapping: 'zero' })
    : createRouter({ name: 'top-k', k: topK });
}

export function moLoraConfigEntry(s: MoLoraSettings): Record<string, unknown> {
  return {
    targets: typeof s.targets === 'string' ? s.targets : [...s.targets],
    experts: s.experts,
    r: s.r,
    alpha: s.alpha,
    top_k: s.topK,
    null_experts: s.nullExperts,
    dropout: s.dropout ?? 0,
  };
}

/** Wraps the target linears with Mo-LoRA layers (fresh from `rng`, or read from `src`). */
export function wrapMoLora(model: CausalLM, s: MoLoraSettings, init: { rng: Rng } | { src: WeightSource }, where = 'mo-lora'): string[] {
  checkMoLoraCounts(s, where);
  const router = moLoraRouter(s.topK, s.nullExperts);
  const selected = selectLinears(model, { targets: s.targets }, where);
  if (selected.length === 0) throw noMatchError(model, { targets: s.targets }, where);
  for (const [path, m] of selected) {
    if (m instanceof MoLoraLinear) throw new Error(`${where}: ${path} already has Mo-LoRA experts`);
    if (m instanceof LoraLinear) throw new Error(`${where}: ${path} already has a LoRA adapter (one adapter per linear)`);
  }
  const hyper = { r: s.r, alpha: s.alpha, dropout: s.dropout ?? 0, topK: s.topK };
  for (const [path, base] of selected) {
    let layer: MoLoraLinear;
    if ('src' in init) {
      const rows = s.experts + s.nullExperts;
      const rw = init.src.get(`${path}.lora_router.weight`, [rows, base.inFeatures], { type: 'router' });
      const experts = Array.from({ length: s.experts }, (_, e) => new LoraExpert(
        init.src.get(`${path}.lora_experts.${e}.lora_A.weight`, [s.r, base.inFeatures], { type: 'linear', fanIn: base.inFeatures }),
        init.src.get(`${path}.lora_experts.${e}.lora_B.weight`, [base.outFeatures, s.r], { type: 'linear', fanIn: s.r })));
      layer = new MoLoraLinear(base, rw, experts, router, hyper, path);
    } else {
      layer = MoLoraLinear.create(base, { ...hyper, experts: s.experts, nullExperts: s.nullExperts }, router, init.rng, path);
    }
    model.setModule(path, layer);
  }
  return selected.map(([p]) => p);
}

/**
 * Mo-LoRA on every target linear (default: q/k/v/o and gate/up/down projections; 4 experts, r 8,
 * alpha 16, top-2, no null experts). Config gains `moe_tune.mo_lora`; everything else is frozen.
 */
export function applyMoLora(model: CausalLM, opts: MoLoraOptions = {}): AppliedAdapters {
  const where = 'mo-lora';
  if (model.config.extensions.mo_lora) {
    throw new Error(`${where}: the model already has Mo-LoRA layers (on ${targetsText(model.config.extensions.mo_lora.targets as TargetPatterns)})`);
  }
  const s = moLoraSettings(opts);
  const rng = opts.rng ?? new Rng(opts.seed ?? 0);
  const before = countParameters(model.parameters().values());
  const modules = wrapMoLora(model, s, { rng }, where);
  editModelConfig(model, (json) => {
    moeTuneOf(json)['mo_lora'] = moLoraConfigEntry(s);
  }, where);
  freezeAllButAdapters(model);
  return { modules, added: countParameters(model.parameters().values()) - before };
}

/** The Mo-LoRA layers of a model, in model order. */
export function moLoraLayers(model: CausalLM): MoLoraLinear[] {
  return model.namedModules().map(([, m]) => m).filter((m): m is MoLoraLinear => m instanceof MoLoraLinear);
}

/**
 * AdaMoE null experts on an existing Mo-LoRA model: each router gains m rows (drawn as a fresh
 * router's rows: the Mo-LoRA router is random to begin with, and m need not be a multiple of n)
 * and top-k becomes `topK`. The new router rows train like the old ones.
 */
export function addMoLoraNullExperts(model: CausalLM, m: number, topK: number, rng: Rng, where = 'null-experts'): AppliedAdapters {
  const cfg = model.config.extensions.mo_lora;
  const layers = moLoraLayers(model);
  if (!cfg || layers.length === 0) throw new Error(`${where}: the model has no Mo-LoRA layers`);
  if (cfg.null_experts > 0) throw new Error(`${where}: the Mo-LoRA layers already have ${cfg.null_experts} null experts`);
  checkMoLoraCounts({ experts: cfg.experts, topK, nullExperts: m }, where);
  const router = moLoraRouter(topK, m);
  const before = countParameters(model.parameters().values());
  for (const layer of layers) {
    const old = layer.lora_router.weight;
    const dtype = linearDtype(layer.base);
    const fresh = routerInit(m, layer.inFeatures, rng, dtype);
    const rows = cfg.experts + m;
    const data = dtype === 'float64' ? new Float64Array(rows * layer.inFeatures) : new Float32Array(rows * layer.inFeatures);
    data.set(old.f.subarray(0, cfg.experts * layer.inFeatures));
    data.set(fresh.f, cfg.experts * layer.inFeatures);
    const w = new Tensor(data, [rows, layer.inFeatures], old.requiresGrad, old.name);
    layer.setRouter(router, w);
  }
  editModelConfig(model, (json) => {
    const ext = moeTuneOf(json);
    ext['mo_lora'] = { ...(ext['mo_lora'] as Record<string, unknown>), null_experts: m, top_k: topK };
  }, where);
  return { modules: layers.map((l) => l.path), added: countParameters(model.parameters().values()) - before };
}
