/**
 * Turns a bench config's base model into the model the step trains: plain (all parameters),
 * AdaMoE (null experts; gate2 rows biased so the measured load is near the target), LoRA on a
 * float base, or QLoRA (NF4 base + LoRA).
 */
import { applySurgery } from '../src/adapters/index.js';
import { applyLora } from '../src/lora/index.js';
import type { CausalLM } from '../src/models/causal-lm.js';
import { ForwardContext } from '../src/models/forward-context.js';
import { Linear } from '../src/models/linear.js';
import { nullExpertsPass } from '../src/adapters/index.js';
import { quantizeModel } from '../src/quant/index.js';
import { fillNormal, noGrad, Rng, Tensor, withScope } from '../src/tensor/index.js';
import type { BenchConfig } from './configs.js';

export interface PreparedVariant {
  /** The model whose trainable parameters the step updates. */
  model: CausalLM;
  /** The model whose weights PyTorch gets (the same model unless the variant changes weights). */
  torchModel?: CausalLM;
}

/** LoRA on every projection (attention q/k/v/o and expert w1/w2/w3), as the qlora config asks. */
const ALL_PROJECTIONS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'w1', 'w2', 'w3'];

/** Measured load of each MoE layer on a batch. */
function layerLoads(model: CausalLM, ids: Tensor): number[] {
  return withScope(() => noGrad(() => {
    const ctx = new ForwardContext(false);
    model.forward(ids, { ctx });
    return ctx.routing.map((r) => r.routing.stats.trueExpertsPerToken);
  }));
}

/**
 * AdaMoE's surgery ties every null row with a true row (load 2 at top-3); a bias on the null rows
 * then jumps the load from 2 to 1. For a load of ~1.5 the gate2 rows are redrawn at random (like the
 * gate's) and each layer gets one bias on its null rows, found by bisection on the bench batch
 * (layer by layer, since a layer's input depends on the layers before it). gate2 and its bias are
 * then frozen so the load stays where it was measured while the rest trains.
 */
function biasNullExperts(model: CausalLM, ids: Tensor, target: number, seed: number): number[] {
  const rng = new Rng(seed);
  const blocks = model.moeBlocks();
  const biases = blocks.map((block) => {
    const g2 = block.gate2 as Linear;
    const w = new Float32Array(g2.weight.size);
    fillNormal(w, 0.02, rng);
    const bias = Tensor.param(new Float32Array(g2.outFeatures), [g2.outFeatures], g2.weight.name?.replace(/weight$/, 'bias'));
    block.setGate2(new Linear(Tensor.param(w, g2.weight.shape, g2.weight.name), bias));
    return bias;
  });
  blocks.forEach((_, l) => {
    let lo = -10;
    let hi = 10;
    for (let i = 0; i < 40; i++) {
      const b = (lo + hi) / 2;
      biases[l]!.f.fill(b);
      const load = layerLoads(model, ids)[l]!;
      if (Math.abs(load - target) < 0.01) break;
      if (load > target) lo = b;
      else hi = b;
    }
  });
  for (const block of blocks) for (const [, p] of block.gate2!.namedParameters()) p.requiresGrad = false;
  return layerLoads(model, ids);
}

export async function prepareVariant(cfg: BenchConfig, model: CausalLM, ids: Tensor): Promise<PreparedVariant> {
  if (cfg.nullExperts) {
    const { m, topK, targetLoad } = cfg.nullExperts;
    applySurgery(model, [nullExpertsPass({ m, topK })]);
    for (const [, p] of model.parameters()) p.requiresGrad = true;
    biasNullExperts(model, ids, targetLoad, 7);
    return { model };
  }
  if (cfg.lora) {
    applyLora(model, { r: cfg.lora.r, alpha: cfg.lora.alpha, targets: ALL_PROJECTIONS, seed: 1 });
    if (cfg.lora.quantize) quantizeModel(model, {});
    return { model };
  }
  return { model };
}
