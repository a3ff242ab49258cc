/**
 * add-null-experts (AdaMoE, paper 004 §3.3, §4.2.1). On a MoE model: each block keeps its router
 * rows (`gate`) and gains `gate2` [m, D] derived from them, top-k over the N + m rows raised to
 * `top_k`, gates renormalised over the true experts in the top-k (the null-experts router). On a
 * dense model with Mo-LoRA layers the pass adds m null experts to every Mo-LoRA router instead.
 *
 * The rule for gate2, any m (moe-tune's choice; the paper only uses m a multiple of N): row j of
 * gate2 is row (j mod N) of gate — gate's rows tiled, the last copy partial. For m a multiple of N
 * this is the paper's "copied from gate in two segments" (m = 16, N = 8); for m < N the first m
 * experts get one null copy each (with N = 64 or 128 experts, m can now be 8 or 16).
 * What it preserves at step 0: every null logit equals a true logit, so
 *   - the true experts' ranking and their probability ratios are unchanged (a null row only
 *     duplicates a true row; the true row wins the tie, true rows come first);
 *   - every true expert a token reaches is one of its original top choices, in order: the sorted
 *     rows run e1, its c_1 copies, e2, its c_2 copies, ... with c_e = floor(m/N) + (e < m mod N);
 *   - a token therefore reaches between ceil(top_k / (1 + ceil(m/N))) and
 *     min(N, ceil(top_k / (1 + floor(m/N)))) true experts (stepZeroTrueExpertRange);
 *   - the router mass on null experts of a token is sum_e c_e p_e (m / (N + m) exactly when N | m).
 * The function (zero mapping) is preserved exactly for every token when both bounds equal the
 * original top-k, e.g. N | m and top_k = k0 (1 + m/N); otherwise for the tokens that reach k0 true
 * experts, and the surgery report gives the measured step-0 loss change.
 *
 * Config: moe_tune.null_experts = {m, top_k, mapping} (Mo-LoRA: moe_tune.mo_lora.null_experts / top_k).
 */
import { Linear } from '../models/linear.js';
import { createRouter } from '../routers/registry.js';
import type { RouterSpec } from '../routers/router.js';
import { Tensor } from '../tensor/index.js';
import { addMoLoraNullExperts, moLoraLayers } from '../lora/index.js';
import { editModelConfig, moeTuneOf } from '../models/config-edit.js';
import { moeBlocksWithPaths, type SurgeryPass } from './surgery-pass.js';

export interface NullExpertsOptions {
  /** Null experts per layer (any m >= 1; gate2 = gate's rows tiled, see above). */
  m: number;
  /** Experts per token over the N + m rows. */
  topK: number;
  mapping?: 'zero' | 'identity';
}

/** gate2 rows for any m: row j of gate2 = row (j mod N) of gate [N, D] (tiled, the last copy partial). */
export function tileGateRows(gate: Float32Array | Float64Array, N: number, D: number, m: number): Float32Array | Float64Array {
  if (!Number.isInteger(m) || m < 1) throw new Error(`null-experts: m must be a positive integer, got ${m}`);
  const out = gate instanceof Float64Array ? new Float64Array(m * D) : new Float32Array(m * D);
  for (let j = 0; j < m; j += N) out.set(gate.subarray(0, Math.min(N, m - j) * D), j * D);
  return out;
}

/**
 * The range of true experts a token reaches at step 0 with tied rows (ties go to the true expert,
 * so the sorted rows run e1, its copies, e2, its copies, ...): the fewest when its top experts have
 * ceil(m/N) copies each, the most when they have floor(m/N).
 */
export function stepZeroTrueExpertRange(N: number, m: number, topK: number): [number, number] {
  const lo = Math.min(N, Math.ceil(topK / (1 + Math.ceil(m / N))));
  const hi = Math.min(N, Math.ceil(topK / (1 + Math.floor(m / N))));
  return [lo, hi];
}

/**
 * True experts each token reaches at step 0 when m is a multiple of N (every expert has m/N
 * copies): ceil(top_k / (1 + m/N)); for other m the low end of stepZeroTrueExpertRange.
 */
export function stepZeroTrueExperts(N: number, m: number, topK: number): number {
  return stepZeroTrueExpertRange(N, m, topK)[0];
}

/** A router spec as written on the command line ('top-k:k=2,renormalize=false'). */
function routerText(spec: RouterSpec): string {
  const params = Object.entries(spec).filter(([k]) => k !== 'name').map(([k, v]) => `${k}=${String(v)}`);
  return params.length ? `${spec.name}:${params.join(',')}` : spec.name;
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
      // The null-experts router is softmax top-k renormalised over the true experts it reaches (AdaMoE eq. 4-5):
      // it can only reproduce a model whose own router is that rule with no routed scale (Mixtral, Qwen3-MoE).
      // Qwen2-MoE / OLMoE (no renormalisation) or DeepSeek-V3 (sigmoid, group-limited, scaled) change at step 0.
      const before = blocks[0]![1].router.spec;
      const sameRule = before.name === 'top-k' && before['renormalize'] !== false && model.config.moe!.routedScale === 1;
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
      const [lo, hi] = stepZeroTrueExpertRange(N, m, topK);
      const tiled = m % N === 0 ? `tiled ${m / N}x` : `tiled (row j = gate row j mod ${N}: experts 0..${(m % N) - 1} get ${Math.floor(m / N) + 1} copies, the others ${Math.floor(m / N)})`;
      ctx.note(`${blocks.length} layers: gate2 [${m}, ${blocks[0]![1].gate.inFeatures}] = gate rows ${tiled}; top-k ${k0} -> ${topK} over ${N} + ${m} experts (${mapping} mapping)`);
      const mass = m % N === 0 ? `m/(N+m) = ${(m / (N + m)).toFixed(4)} for every token` : 'the sum of p_e over the copied experts (per token)';
      const reach = lo === hi ? `${lo} true expert(s)` : `${lo} to ${hi} true experts (depending on which of its experts have copies)`;
      ctx.note(`step 0: router mass on null experts = ${mass}; ties go to the true expert, so each token reaches ${reach}`
        + (mapping !== 'zero' || lo !== k0 || hi !== k0
          ? ` (original top-${k0}): the function changes at step 0 for tokens that reach another number`
          : sameRule
            ? ` = the original top-${k0}: the function is preserved at step 0`
            : ` = the original top-${k0}, but the model's own router (${routerText(before)}${model.config.moe!.routedScale !== 1 ? `, routed scale ${model.config.moe!.routedScale}` : ''}) is not renormalised softmax top-k: the gates, so the function, change at step 0`));
    },
  };
}
