/**
 * Puts LoRA adapters on the linears chosen by name patterns, records them in the config
 * (`moe_tune.lora`, so saveModel / loadModel rebuild them) and freezes everything but the adapters.
 */
import type { CausalLM } from '../models/causal-lm.js';
import type { WeightSource } from '../models/weight-source.js';
import { Rng } from '../tensor/index.js';
import { editModelConfig, moeTuneOf } from '../models/config-edit.js';
import { countParameters, freezeAllButAdapters } from './freeze.js';
import { checkLoraHyper, LoraLinear, type LoraHyper } from './lora-linear.js';
import { MoLoraLinear } from './mo-lora-linear.js';
import { noMatchError, selectLinears, targetsText, type TargetPatterns, type TargetSelection } from './target-match.js';

export interface LoraOptions extends LoraHyper, TargetSelection {
  /** Seed of A's initialisation (default 0), unless `rng` is given. */
  seed?: number;
  rng?: Rng;
  /** A and B from this source instead of a fresh initialisation (loading; preflight skeletons). */
  weights?: WeightSource;
}

export interface AppliedAdapters {
  /** Paths of the wrapped linears, in model order. */
  modules: string[];
  /** Parameters added. */
  added: number;
}

/** The moe_tune.lora config entry for these options. */
export function loraConfigEntry(opts: LoraOptions): Record<string, unknown> {
  const entry: Record<string, unknown> = {
    targets: copyTargets(opts.targets),
    r: opts.r,
    alpha: opts.alpha,
    dropout: opts.dropout ?? 0,
    rslora: opts.rslora ?? false,
  };
  if (opts.exclude) entry['exclude'] = copyTargets(opts.exclude);
  if (opts.layers && opts.layers.length > 0) entry['layers'] = [...opts.layers];
  return entry;
}

function copyTargets(t: TargetPatterns): TargetPatterns {
  return typeof t === 'string' ? t : [...t];
}

/**
 * Wraps the selected linears with LoRA, without touching the config or the frozen flags. A and B
 * come from `src` (loading) or fresh from `rng` (A Kaiming-uniform, B zero).
 */
export function wrapLora(model: CausalLM, opts: LoraHyper & TargetSelection, init: { rng: Rng } | { src: WeightSource }, where = 'lora'): string[] {
  checkLoraHyper(opts, where);
  const selected = selectLinears(model, opts, where);
  if (selected.length === 0) throw noMatchError(model, opts, where);
  for (const [path, m] of selected) {
    if (m instanceof LoraLinear) throw new Error(`${where}: ${path} already has a LoRA adapter (apply one lora pass with all targets)`);
    if (m instanceof MoLoraLinear) throw new Error(`${where}: ${path} already has Mo-LoRA experts (one adapter per linear)`);
  }
  const hyper: LoraHyper = { r: opts.r, alpha: opts.alpha, dropout: opts.dropout ?? 0, rslora: opts.rslora ?? false };
  for (const [path, base] of selected) {
    let wrapped: LoraLinear;
    if ('src' in init) {
      const a = init.src.get(`${path}.lora_A.weight`, [opts.r, base.inFeatures], { type: 'linear', fanIn: base.inFeatures });
      const b = init.src.get(`${path}.lora_B.weight`, [base.outFeatures, opts.r], { type: 'linear', fanIn: opts.r });
      wrapped = new LoraLinear(base, a, b, hyper);
    } else {
      wrapped = LoraLinear.create(base, hyper, init.rng, path);
    }
    model.setModule(path, wrapped);
  }
  return selected.map(([p]) => p);
}

/**
 * LoRA on every linear matching `targets` (PEFT's target_modules rules: names / path suffixes, a
 * regex string, or 'all-linear'); y = W x + (alpha / r) B A dropout(x). Everything else is frozen.
 * The model's config gains `moe_tune.lora`, so a saved model reloads with its adapters.
 */
export function applyLora(model: CausalLM, opts: LoraOptions): AppliedAdapters {
  const where = 'lora';
  const existing = model.config.extensions.lora;
  if (existing) throw new Error(`${where}: the model already has LoRA adapters (r=${existing.r} on ${targetsText(existing.targets as TargetPatterns)}); apply one lora pass with all targets`);
  const rng = opts.rng ?? new Rng(opts.seed ?? 0);
  const before = countParameters(model.parameters().values());
  const modules = wrapLora(model, opts, opts.weights ? { src: opts.weights } : { rng }, where);
  editModelConfig(model, (json) => {
    moeTuneOf(json)['lora'] = loraConfigEntry(opts);
  }, where);
  freezeAllButAdapters(model);
  return { modules, added: countParameters(model.parameters().values()) - before };
}
