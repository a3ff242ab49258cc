/**
 * add-null-experts (AdaMoE, paper 004 §3.3, §4.2.1). On a MoE model: each block keeps `gate` and
 * gains `gate2` [m, D] whose rows are gate's rows tiled m/N times ("copied from gate in two
 * segments" for m = 16, N = 8), top-k over the N + m rows raised to `top_k`, gates renormalised
 * over the true experts in the top-k (the null-experts router). Each null row ties a true row, so
 * at step 0 the router mass on null experts is exactly m / (N + m) for every token and the true
 * expert wins every tie (true rows come first). On a dense model with Mo-LoRA layers the pass adds
 * m null experts to every Mo-LoRA router instead.
 *
 * Config: moe_tune.null_experts = {m, top_k, mapping} (Mo-LoRA: moe_tune.mo_lora.null_experts / top_k).
 */
import { Linear } from '../models/linear.js';
import { createRouter } from '../routers/registry.js';
import { Tensor } from '../tensor/index.js';
import { addMoLoraNullExperts, moLoraLayers } from '../lora/index.js';
import { editModelConfig, moeTuneOf } from '../models/config-edit.js';
import { moeBlocksWithPaths, type SurgeryPass } from './surgery-pass.js';

export interface NullExpertsOptions {
  /** Null experts per layer (a multiple of N on MoE blocks). */
  m: number;
  /** Experts per token over the N + m rows. */
  topK: number;
  mapping?: 'zero' | 'identity';
}

/** gate2 rows: gate [N, D] tiled m/N times (row j of gate2 = row j mod N of gate). */
export function tileGateRows(gate: Float32Array | Float64Array, N: number, D: number, m: number): Float32Array | Float64Array {
  if (m % N !== 0) throw new Error(`null-experts: m=${m} is not a multiple of the ${N} experts per layer`);
  const out = gate instanceof Float64Array ? new Float64Array(m * D) : new Float32Array(m * D);
  for (let c = 0; c < m / N; c++) out.set(gate.subarray(0, N * D), c * N * D);
  return out;
}

/**
 * True experts each token reaches at step 0 with tied rows: ties are broken in favour of the true
 * expert, so the sorted rows run t1, its m/N copies, t2, ... and top_k takes ceil(top_k / (1 + m/N)).
 */
export function stepZeroTrueExperts(N: number, m: number, topK: number): number {
  return Math.min(N, Math.ceil(topK / (1 + m / N)));
}

export function nullExpertsPass(opts: NullExpertsOptions, spec?: string): SurgeryPass {
  const { m, topK } = opts;
  const mapping = opts.mapping ?? 'zero';
  return {
    name: 'null-experts',
    spec,
    configKeys: ['moe_tune.null_experts'],
    check(model) {
      if (!Number.isInteger(m) || m < 1) return `m must be a positive integer, got ${m}`;
      if (!Number.isInteger(topK) || topK < 1) return `top_k must be a positive integer, got ${topK}`;
      if (mapping !== 'zero' && mapping !== 'identity') return `mapping must be 'zero' or 'identity', got '${String(mapping)}'`;
      const blocks = moeBlocksWithPaths(model);
      const ext = model.config.extensions;
      if (blocks.length === 0) {
        if (moLoraLayers(model).length === 0) {
          return `${model.config.architecture} has no MoE layers; null experts need MoE blocks (Mixtral) or Mo-LoRA layers (apply mo-lora first)`;
        }
        if (mapping !== 'zero') return `Mo-LoRA null experts are zero mappings (mapping '${mapping}' is for MoE blocks)`;
        if ((ext.mo_lora?.null_experts ?? 0) > 0) return `the Mo-LoRA layers already have ${ext.mo_lora!.null_experts} null experts`;
        const n = ext.mo_lora!.experts;
        if (topK > n + m) return `top_k ${topK} is more than the ${n} LoRA experts + ${m} null experts`;
        return null;
      }
      const N = blocks[0]![1].numExperts;
      if (ext.null_experts) return `the model already has ${ext.null_experts.m} null experts per layer`;
      if (ext.ternary) return 'the model has TC-MoE ternary router rows; null experts do not combine with them';
      if (ext.router) return `the model's router is fixed by moe_tune.router ('${ext.router.name}'); null experts need the null-experts router`;
      if (m % N !== 0) return `m=${m} is not a multiple of the ${N} experts per layer (gate2 rows are gate's rows tiled m/N times)`;
      if (topK > N + m) return `top_k ${topK} is more than the ${N} experts + ${m} null experts`;
      for (const [path, block] of blocks) {
        if (!(block.gate instanceof Linear)) return `${path}.gate is a ${block.gate.constructor.name}, not a plain linear (apply null-experts before lora)`;
        if (block.gate.bias) return `${path}.gate has a bias; null experts expect Mixtral's bias-free gate`;
        if (block.gate2) return `${path} already has a gate2`;
      }
      return null;
    },
    apply(model, ctx) {
      const blocks = moeBlocksWithPaths(model);
      if (blocks.length === 0) {
        const before = model.config.extensions.mo_lora!.top_k;
        const res = addMoLoraNullExperts(model, m, topK, ctx.rng);
        ctx.note(`Mo-LoRA: ${res.modules.length} routers gain ${m} null-expert rows (random, as a fresh router); top-k ${before} -> ${topK} over ${model.config.extensions.mo_lora!.experts} + ${m} experts`);
        return;
      }
      const N = blocks[0]![1].numExperts;
      const k0 = model.config.moe!.topK;
      const router = createRouter({ name: 'null-experts', k: topK, m, mapping });
      for (const [path, block] of blocks) {
        const gate = block.gate as Linear;
        const D = gate.inFeatures;
        const data = tileGateRows(gate.weight.f, N, D, m);
        block.setGate2(new Linear(new Tensor(data, [m, D], gate.weight.requiresGrad, `${path}.gate2.weight`)));
      }
      editModelConfig(model, (json) => {
        moeTuneOf(json)['null_experts'] = { m, top_k: topK, mapping };
      }, 'null-experts');
      model.setRouter(router);
      const t0 = stepZeroTrueExperts(N, m, topK);
      ctx.note(`${blocks.length} layers: gate2 [${m}, ${blocks[0]![1].gate.inFeatures}] = gate rows tiled ${m / N}x; top-k ${k0} -> ${topK} over ${N} + ${m} experts (${mapping} mapping)`);
      ctx.note(`step 0: router mass on null experts = m/(N+m) = ${(m / (N + m)).toFixed(4)} for every token; ties go to the true expert, so each token reaches ${t0} true expert(s)`
        + (mapping === 'zero' && t0 === k0 ? ` = the original top-${k0}: the function is preserved at step 0` : ` (original top-${k0}): the function changes at step 0`));
    },
  };
}
