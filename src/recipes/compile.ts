/**
 * The checks of a recipe that need the registries (routers, aux losses, surgery passes, model
 * configs), and the runtime objects they describe. Each problem is reported with the recipe key
 * path it comes from, so the loader can name the file (or --set) and the key.
 */
import { parseSurgerySpec, type SurgeryPass } from '../adapters/index.js';
import { parseRouterSeries, type RouterSeries } from '../eval/router-sweep.js';
import type { WeightedAuxLoss } from '../losses/aux-loss.js';
import { createWeightedAuxLoss } from '../losses/registry.js';
import type { ScheduleSpec } from '../losses/schedule.js';
import { configFromJson } from '../models/create.js';
import { createRouter, parseRouterSpec } from '../routers/registry.js';
import type { Router, RouterSpec } from '../routers/router.js';
import { parseTargets, type TargetPatterns } from '../lora/index.js';
import type { AuxLossEntry, Recipe } from './schema.js';

/** A problem at a key path of the recipe. */
export class RecipeKeyError extends Error {
  constructor(readonly path: readonly (string | number)[], message: string) {
    super(message);
    this.name = 'RecipeKeyError';
  }
}

function at<T>(path: (string | number)[], fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof RecipeKeyError) throw err;
    throw new RecipeKeyError(path, (err as Error).message);
  }
}

/** LoRA targets of a recipe list: names, or one 'all-linear' / 're:<regex>' entry. */
export function loraTargetsOf(list: readonly string[]): TargetPatterns {
  return parseTargets(list.length === 1 ? list[0]! : list.join('|'), 'targets');
}

/** The weighted aux loss of one recipe entry (fresh objects each call). */
export function auxLossOf(e: AuxLossEntry): WeightedAuxLoss {
  return createWeightedAuxLoss({
    name: e.name,
    weight: e.weight as number | ScheduleSpec,
    ...(e.form !== undefined ? { form: e.form } : {}),
    ...(e.sequence_length !== undefined ? { sequenceLength: e.sequence_length } : {}),
    ...(e.null_group !== undefined ? { nullGroup: e.null_group } : {}),
  });
}

export function routerSpecOf(text: string): RouterSpec {
  const spec = parseRouterSpec(text);
  createRouter(spec);
  return spec;
}

/** The model config a pretrain recipe builds (vocab_size from the tokenizer or a placeholder). */
export function pretrainModelConfig(r: Recipe, vocabSize: number): Record<string, unknown> {
  const cfg: Record<string, unknown> = { ...(r.model?.config ?? {}), vocab_size: vocabSize };
  if (r.router) {
    const ext = { ...((cfg['moe_tune'] as Record<string, unknown> | undefined) ?? {}) };
    ext['router'] = routerSpecOf(r.router);
    cfg['moe_tune'] = ext;
  }
  return cfg;
}

export interface CompiledRecipe {
  auxLosses(): WeightedAuxLoss[];
  router(): Router | null;
  routerSpec: RouterSpec | null;
  passes(): SurgeryPass[];
  sweep: RouterSeries[];
}

/** Checks everything the schema cannot (throws RecipeKeyError) and returns the factories. */
export function compileRecipe(r: Recipe): CompiledRecipe {
  const routerSpec = r.router === null ? null : at(['router'], () => routerSpecOf(r.router!));
  r.aux_losses.forEach((e, i) => at(['aux_losses', i], () => auxLossOf(e)));
  r.surgery.forEach((s, i) => at(['surgery', i], () => parseSurgerySpec(s)));
  const sweep = r.eval.sweep.map((s, i) => at(['eval', 'sweep', i], () => parseRouterSeries(s)));
  if (r.lora) {
    const lora = r.lora;
    at(['lora', 'targets'], () => loraTargetsOf(lora.targets));
  }
  if (r.model) {
    const m = r.model;
    at(['model', 'config'], () => {
      const cfg = r.kind === 'pretrain' ? pretrainModelConfig(r, Math.max(r.tokenizer.vocab_size, 8)) : { vocab_size: r.tokenizer.vocab_size, ...m.config };
      configFromJson(cfg, 'config');
    });
  }
  if (r.kind === 'pretrain') {
    if (r.quantization.method !== 'none') throw new RecipeKeyError(['quantization', 'method'], 'quantisation applies to fine-tuning a base model, not to pretraining');
    if (r.surgery.length > 0) throw new RecipeKeyError(['surgery'], 'pretraining builds its architecture from model.config; surgery passes are for kind: finetune');
    if (r.lora) throw new RecipeKeyError(['lora'], 'LoRA applies to fine-tuning, not to pretraining');
  }
  return {
    auxLosses: () => r.aux_losses.map(auxLossOf),
    router: () => (routerSpec ? createRouter(routerSpec) : null),
    routerSpec,
    passes: () => r.surgery.map((s) => parseSurgerySpec(s)),
    sweep,
  };
}
