/**
 * Preflight of a fine-tuning recipe: everything that config.json, the safetensors headers and the
 * recipe can tell, checked before any weight is read, so a recipe that does not fit a 14 GB model
 * fails in about a second with the same one-line errors the full run would give:
 *
 *  - data files exist (they are parsed next, still before the load);
 *  - the checkpoint: every tensor the architecture needs is there with its shape, none is left
 *    over (quant/skeleton.ts builds the model from the headers, parameters as zero views);
 *  - surgery passes against the model (expert counts, layers, ...), then LoRA targets against the
 *    module names, then the router spec against the MoE layers: adaptBase() / adaptLora(), the very code the
 *    run uses (adapt-model.ts), on the skeleton (LoRA's A / B are zero views too);
 *  - the trainable set (train.trainable / train.frozen) against the adapted parameter names;
 *  - every aux loss against the routing records of one forward pass of the skeleton over a few
 *    tokens (an aux loss needing null experts on a model without them, a per-layer form on
 *    unequal layers, ...).
 */
import * as fs from 'node:fs';
import { requireModelDir } from '../io/index.js';
import { ForwardContext } from '../models/forward-context.js';
import { buildSkeleton, zeroWeightSource } from '../quant/skeleton.js';
import { noGrad, Rng, Tensor, withScope } from '../tensor/index.js';
import { selectTrainable } from '../train/trainable.js';
import { adaptBase, adaptLora } from './adapt-model.js';
import type { ResolvedRecipe } from './load-recipe.js';

export interface PreflightOptions {
  /** The base model directory (wins over the recipe's base_model). */
  modelDir?: string | null;
  /** Data files (win over the recipe's data). */
  dataFiles?: readonly string[] | null;
}

export interface PreflightReport {
  seconds: number;
  /** The checked base model directory (null: a randomly initialised base, nothing to check). */
  modelDir: string | null;
  /** Tensor bytes the load will read. */
  checkpointBytes: number;
}

/** Fails with one line when a data file is missing or not a file. */
export function requireDataFile(file: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw new Error(`${file}: data file not found`);
  }
  if (!st.isFile()) throw new Error(`${file}: not a file (expected a JSONL or text data file)`);
}

/** Tokens of the preflight forward pass (enough for every router and loss to see a routing). */
const PREFLIGHT_TOKENS = 4;

export function preflightFinetune(resolved: ResolvedRecipe, o: PreflightOptions = {}): PreflightReport {
  const t0 = performance.now();
  const r = resolved.recipe;
  for (const f of o.dataFiles ?? []) requireDataFile(f);
  if (r.data.source === 'files' && !(o.dataFiles && o.dataFiles.length)) for (const f of r.data.files) requireDataFile(f);
  const dir = o.modelDir ?? r.base_model ?? null;
  if (dir === null || !fs.existsSync(dir)) return { seconds: (performance.now() - t0) / 1000, modelDir: null, checkpointBytes: 0 };
  requireModelDir(dir);
  const skeleton = buildSkeleton(dir);
  const model = skeleton.model;
  const seed = r.seeds[0] ?? 0;
  adaptBase(model, resolved, { seed });
  adaptLora(model, resolved, { seed, loraWeights: zeroWeightSource() });
  selectTrainable(model, { train: r.train.trainable, ...(r.train.frozen ? { frozen: r.train.frozen } : {}) });
  const aux = resolved.compiled.auxLosses();
  if (aux.length > 0) {
    withScope(() => noGrad(() => {
      const T = Math.max(1, Math.min(r.train.seq_len, PREFLIGHT_TOKENS));
      const ctx = new ForwardContext(true, new Rng(0), 0);
      model.forward(new Tensor(new Int32Array(T), [1, T]), { ctx });
      for (const a of aux) a.loss.compute(ctx.routing);
    }));
  }
  return { seconds: (performance.now() - t0) / 1000, modelDir: dir, checkpointBytes: skeleton.checkpointBytes };
}
