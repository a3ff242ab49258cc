/**
 * What a fine-tuning recipe does to its base model before training: the surgery passes and the
 * router (adaptBase), then LoRA (adaptLora). The same functions run on the real model
 * (finetune-setup.ts) and on the preflight skeleton (preflight.ts), so a recipe that does not fit
 * fails with the same one-line errors either way.
 */
import { applySurgery, formatSurgeryReport } from '../adapters/index.js';
import { applyLora } from '../lora/index.js';
import { editModelConfig, moeTuneOf } from '../models/config-edit.js';
import type { CausalLM } from '../models/causal-lm.js';
import type { WeightSource } from '../models/weight-source.js';
import type { Tensor } from '../tensor/index.js';
import { loraTargetsOf } from './compile.js';
import type { ResolvedRecipe } from './load-recipe.js';

export interface AdaptOptions {
  seed: number;
  /** A batch for the surgery report's step-0 loss change. */
  batch?: { ids: Tensor; targets?: Tensor };
  /** LoRA A / B from this source instead of a fresh initialisation (the preflight's zero views). */
  loraWeights?: WeightSource;
}

/** The surgery passes (seeded), then the recipe's router; returns the surgery report lines. */
export function adaptBase(model: CausalLM, resolved: ResolvedRecipe, o: AdaptOptions): string[] {
  let surgeryReport: string[] = [];
  const passes = resolved.compiled.passes();
  if (passes.length > 0) {
    const { report } = applySurgery(model, passes, { seed: o.seed, ...(o.batch ? { batch: o.batch } : {}) });
    surgeryReport = formatSurgeryReport(report);
  }
  const router = resolved.compiled.router();
  if (router) {
    if (model.moeBlocks().length === 0) throw new Error(`router: ${model.config.architecture} has no MoE layers to route`);
    model.setRouter(router);
    editModelConfig(model, (json) => { moeTuneOf(json)['router'] = resolved.compiled.routerSpec; }, 'router');
  }
  return surgeryReport;
}

/** The recipe's LoRA (seeded); returns the log line, or null without LoRA. */
export function adaptLora(model: CausalLM, resolved: ResolvedRecipe, o: AdaptOptions): string | null {
  const l = resolved.recipe.lora;
  if (!l) return null;
  const res = applyLora(model, {
    targets: loraTargetsOf(l.targets), exclude: l.exclude ? loraTargetsOf(l.exclude) : null, r: l.r, alpha: l.alpha,
    dropout: l.dropout, rslora: l.rslora, seed: o.seed, ...(o.loraWeights ? { weights: o.loraWeights } : {}),
  });
  return `LoRA r ${l.r} on ${res.modules.length} linears (+${res.added} parameters)`;
}
