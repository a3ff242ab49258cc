/**
 * Importing a PEFT adapter trained on transformers 5, whose MoE experts are fused parameters (`gate_up_proj`
 * [E, 2F, D], `down_proj` [E, D, F]) adapted through PEFT's `target_parameters` (lora.ParamWrapper). Its keys are
 * `<moe block>.experts.base_layer.lora_A/B.weight` and `<moe block>.experts.lora_A/B.weight` (one pair per fused
 * parameter, told apart by their shapes), with every expert's rank-r factors stacked: PEFT's
 * ParamWrapper.get_delta_weight reads A as [E, r, in] (row e*r + j) and B as [out, r, E] (column j*E + e), so
 *
 *   dW_e = scaling * B[:, :, e] A[e]          (gate_up: rows [0, F) are the gate (w1), [F, 2F) the up (w3))
 *
 * moe-tune holds one LoRA per expert projection with one r and alpha for the whole model: the factors are
 * split per expert, every module's rank padded with zeros to the largest, and each module's own scaling
 * (rank_pattern / alpha_pattern) folded into its B, so the imported model computes what PEFT computes.
 */
import { layoutOf } from '../models/architectures/index.js';
import type { CausalLM } from '../models/causal-lm.js';
import type { SafetensorsFile } from '../io/index.js';
import { applyLora, LoraLinear, type TargetPatterns } from '../lora/index.js';
import { PEFT_KEY_PREFIX } from './peft-config.js';

export interface FusedPeftConfig {
  r: number;
  alpha: number;
  rslora: boolean;
  targetModules: readonly string[];
  targetParameters: readonly string[];
  rankPattern: Record<string, number>;
  alphaPattern: Record<string, number>;
}

interface Factor { a: Float32Array; b: Float32Array; rows: number; inF: number; outF: number; rank: number; scaling: number }

/** The rank and alpha of a parameter per PEFT's patterns (regex keys matched against the module path's end). */
function patternValue(pattern: Record<string, number>, key: string, dflt: number): number {
  for (const [re, v] of Object.entries(pattern)) if (new RegExp(`(^|\\.)(${re})$`).test(key) || new RegExp(re).test(key)) return v;
  return dflt;
}

export function importFusedPeftAdapter(model: CausalLM, file: SafetensorsFile, cfg: FusedPeftConfig, where: string): string[] {
  const c = model.config;
  if (!c.moe) throw new Error(`${where}: field 'target_parameters': ${c.architecture} has no MoE experts to adapt`);
  const names = layoutOf(c).names;
  const E = c.moe.numExperts;
  const F = c.moe.expertIntermediateSize;
  const D = c.hiddenSize;
  const scale = (r: number, alpha: number): number => (cfg.rslora ? alpha / Math.sqrt(r) : alpha / r);
  // per-module factors [out, rank] x [rank, in] with their own scaling, keyed by moe-tune module path
  const factors = new Map<string, Factor>();
  const read = (k: string): Float32Array => file.readFloat32(k);
  for (const layer of c.moe.layers) {
    const hfBlock = `model.layers.${layer}.mlp.${names.experts}`;
    const ours = `model.layers.${layer}.${names.moe}.${names.experts}`;
    for (const inner of ['base_layer.', '']) {
      const ka = `${PEFT_KEY_PREFIX}${hfBlock}.${inner}lora_A.weight`;
      const kb = `${PEFT_KEY_PREFIX}${hfBlock}.${inner}lora_B.weight`;
      if (!file.has(ka) || !file.has(kb)) continue;
      const [rE, inF] = file.info(ka).shape as [number, number];
      const [outF, rE2] = file.info(kb).shape as [number, number];
      if (rE !== rE2 || rE % E !== 0) throw new Error(`${where}: ${ka} [${rE}, ${inF}] and ${kb} [${outF}, ${rE2}] do not stack ${E} experts`);
      const param = inF === D && outF === 2 * F ? 'gate_up_proj' : inF === F && outF === D ? 'down_proj' : null;
      if (!param) throw new Error(`${where}: ${ka}: shapes [${rE}, ${inF}] / [${outF}, ${rE2}] fit neither gate_up_proj [${2 * F}, ${D}] nor down_proj [${D}, ${F}]`);
      const r = rE / E;
      const paramKey = `${hfBlock}.${param}`;
      const s = scale(patternValue(cfg.rankPattern, paramKey, cfg.r), patternValue(cfg.alphaPattern, paramKey, cfg.alpha));
      const A = read(ka);
      const B = read(kb);
      for (let e = 0; e < E; e++) {
        // A_e = A[e*r .. (e+1)*r), B_e[o, j] = B[o, j*E + e]
        const Ae = A.slice(e * r * inF, (e + 1) * r * inF);
        const parts = param === 'gate_up_proj'
          ? [[names.expertProj.gate, 0], [names.expertProj.up, F]] as const
          : [[names.expertProj.down, 0]] as const;
        const rowsOut = param === 'gate_up_proj' ? F : D;
        for (const [proj, off] of parts) {
          const Be = new Float32Array(rowsOut * r);
          for (let o = 0; o < rowsOut; o++) for (let j = 0; j < r; j++) Be[o * r + j] = B[(off + o) * rE + j * E + e]!;
          factors.set(`${ours}.${e}.${proj}`, { a: Ae, b: Be, rows: rowsOut, inF, outF: rowsOut, rank: r, scaling: s });
        }
      }
    }
  }
  if (factors.size === 0) throw new Error(`${where}: field 'target_parameters' ${JSON.stringify(cfg.targetParameters)}: no fused expert LoRA tensors (…mlp.${names.experts}.lora_A.weight) in the adapter`);
  // the plain target_modules (attention, dense MLPs) as PEFT saved them
  for (const name of file.names()) {
    const m = /^base_model\.model\.(.+)\.lora_A\.weight$/.exec(name);
    if (!m || m[1]!.endsWith(`.${names.experts}`) || m[1]!.endsWith(`.${names.experts}.base_layer`)) continue;
    const p = m[1]!;
    const [r, inF] = file.info(name).shape as [number, number];
    const outF = file.info(`${PEFT_KEY_PREFIX}${p}.lora_B.weight`).shape[0]!;
    const s = scale(patternValue(cfg.rankPattern, p, cfg.r), patternValue(cfg.alphaPattern, p, cfg.alpha));
    factors.set(p, { a: read(name), b: read(`${PEFT_KEY_PREFIX}${p}.lora_B.weight`), rows: outF, inF, outF, rank: r, scaling: s });
  }
  // one rank R and alpha for the model: pad with zeros, fold each module's scaling into its B
  const R = Math.max(...[...factors.values()].map((f) => f.rank));
  const alpha = cfg.rslora ? Math.sqrt(R) : R; // moe-tune scaling 1: every module's own scaling goes into B
  const paths = [...factors.keys()].sort();
  const res = applyLora(model, { targets: paths as TargetPatterns, r: R, alpha, dropout: 0, rslora: cfg.rslora });
  for (const p of res.modules) {
    const f = factors.get(p)!;
    const m = model.getModule(p) as LoraLinear;
    const A = m.lora_A.weight.f;
    const Bw = m.lora_B.weight.f;
    A.fill(0);
    Bw.fill(0);
    A.set(f.a.subarray(0, f.rank * f.inF));
    for (let o = 0; o < f.outF; o++) for (let j = 0; j < f.rank; j++) Bw[o * R + j] = f.b[o * f.rank + j]! * f.scaling / m.scaling;
  }
  return res.modules;
}
