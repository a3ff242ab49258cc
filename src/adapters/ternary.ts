/**
 * add-ternary-rows (TC-MoE, paper 000). Each block's gate grows to 2N + K rows with a bias:
 * rows E^1 (N, the old gate: E_i^1 = E_i), E^-1 (N, new: E_i^-1 = -E_i shares E_i's weights),
 * E^0 (K zero experts, new); new rows drawn N(0, 0.006^2) and the bias 0 / -1 / -10 by type, as
 * the paper initialises its from-scratch pretraining (A.2). K defaults to the top-K value.
 *
 * The paper never modifies a trained model: at step 0 p(E_i^-1) ~ e^-1 p(E_i^1) can enter the
 * top-K, so on a trained model this changes the function. That is our own design; the report
 * gives the step-0 loss change when applySurgery gets a batch.
 *
 * Config: moe_tune.ternary = {zero_experts: K}; router 'ternary' (k = top-K, zero = K).
 */
import { ternaryBias } from '../models/init.js';
import { Linear } from '../models/linear.js';
import { createRouter } from '../routers/registry.js';
import { fillNormal, Tensor, type Rng } from '../tensor/index.js';
import { editModelConfig, moeTuneOf } from '../models/config-edit.js';
import { moeBlocksWithPaths, type SurgeryPass } from './surgery-pass.js';

/** Paper 000's router init std. */
export const TERNARY_INIT_STD = 0.006;

export interface TernaryOptions {
  /** Zero experts K (default: the model's top-K). */
  zero?: number;
  /** Std of the new rows (default 0.006). */
  std?: number;
}

/** The ternary gate [2N + K, D] and bias [2N + K] built from a gate [N, D]. */
export function ternaryGate(gate: Float32Array | Float64Array, N: number, D: number, K: number, rng: Rng, std = TERNARY_INIT_STD):
  { weight: Float32Array | Float64Array; bias: Float32Array | Float64Array } {
  const rows = 2 * N + K;
  const f64 = gate instanceof Float64Array;
  const weight = f64 ? new Float64Array(rows * D) : new Float32Array(rows * D);
  weight.set(gate.subarray(0, N * D));
  fillNormal(weight.subarray(N * D), std, rng);
  const b = ternaryBias(N, K);
  const bias = f64 ? Float64Array.from(b) : b;
  return { weight, bias };
}

export function ternaryPass(opts: TernaryOptions = {}, spec?: string): SurgeryPass {
  const std = opts.std ?? TERNARY_INIT_STD;
  return {
    name: 'ternary',
    spec,
    configKeys: ['moe_tune.ternary'],
    check(model) {
      const blocks = moeBlocksWithPaths(model);
      if (blocks.length === 0) return `${model.config.architecture} has no MoE layers; ternary router rows need MoE blocks`;
      const K = opts.zero ?? model.config.moe!.topK;
      if (!Number.isInteger(K) || K < 1) return `zero (the number of zero experts K) must be a positive integer, got ${K}`;
      if (!(std > 0)) return `std must be positive, got ${std}`;
      const ext = model.config.extensions;
      if (ext.ternary) return `the model already has ternary router rows (K=${ext.ternary.zero_experts})`;
      if (ext.null_experts) return 'the model has AdaMoE null experts; ternary rows do not combine with them';
      if (ext.router) return `the model's router is fixed by moe_tune.router ('${ext.router.name}'); ternary rows need the ternary router`;
      for (const [path, block] of blocks) {
        if (!(block.gate instanceof Linear)) return `${path}.gate is a ${block.gate.constructor.name}, not a plain linear (apply ternary before lora)`;
        if (block.gate.bias) return `${path}.gate already has a bias`;
        if (block.gate2) return `${path} has a gate2 (null experts)`;
      }
      return null;
    },
    apply(model, ctx) {
      const blocks = moeBlocksWithPaths(model);
      const N = blocks[0]![1].numExperts;
      const k = model.config.moe!.topK;
      const K = opts.zero ?? k;
      const router = createRouter({ name: 'ternary', k, zero: K });
      for (const [path, block] of blocks) {
        const gate = block.gate as Linear;
        const D = gate.inFeatures;
        const g = ternaryGate(gate.weight.f, N, D, K, ctx.rng, std);
        const rg = gate.weight.requiresGrad;
        model.setModule(`${path}.gate`, new Linear(
          new Tensor(g.weight, [2 * N + K, D], rg, `${path}.gate.weight`),
          new Tensor(g.bias, [2 * N + K], rg, `${path}.gate.bias`)));
      }
      editModelConfig(model, (json) => {
        moeTuneOf(json)['ternary'] = { zero_experts: K };
      }, 'ternary');
      model.setRouter(router);
      ctx.note(`${blocks.length} layers: gate [${N}, D] -> [${2 * N + K}, D] + bias, rows E^1 (${N}, old gate) | E^-1 (${N}, N(0, ${std}^2)) | E^0 (${K}, N(0, ${std}^2)); bias 0 / -1 / -10`);
      ctx.note('TC-MoE (paper 000) only pretrains from scratch: on a trained model the new rows change the function at step 0 (E^-1 rows can enter the top-K); see the step-0 loss change');
    },
  };
}
