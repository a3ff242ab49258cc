/**
 * Builds a CausalLM for a normalised config from a WeightSource, reading every module and tensor
 * name from the family's declared layout (architectures/<family>.ts): one builder for every family
 * and for moe-tune's extended layouts (null-expert gate2 rows, ternary router rows with a bias, MoE
 * in some layers, decomposed experts with a gate scale, layer extensions such as LoRA).
 */
import { createDefaultRouter } from './default-router.js';
import type { Router } from '../routers/router.js';
import { GqaAttention, type AttentionModule } from './attention.js';
import { layoutOf, type ArchitectureLayout, type AttentionBuildContext, type GatedProjNames } from './architectures/index.js';
import { CausalLM, DecoderStack } from './causal-lm.js';
import type { ModelConfig } from './config.js';
import { DecoderLayer } from './decoder-layer.js';
import { Embedding } from './embedding.js';
import { buildLayerExtensions } from './layer-extensions.js';
import { Linear, sourceLinear } from './linear.js';
import { GatedMLP } from './mlp.js';
import { SparseMoeBlock } from './moe-block.js';
import { RMSNorm } from './rms-norm.js';
import { routerModules } from './router-rows.js';
import type { WeightSource } from './weight-source.js';

export { registerLayerExtension, type LayerExtension } from './layer-extensions.js';
export { sourceLinear };

export interface BuildOptions {
  /** A router to use in every MoE layer instead of the config's own. */
  router?: Router;
}

/** A gated MLP D -> F -> D under `prefix` with the family's projection names (created in their declared order). */
export function sourceGatedMLP(src: WeightSource, prefix: string, names: GatedProjNames, D: number, F: number, bias: boolean): GatedMLP {
  const shapes = { gate: [F, D], up: [F, D], down: [D, F] } as const;
  const layers = {} as Record<keyof GatedProjNames, Linear>;
  for (const role of Object.keys(names) as (keyof GatedProjNames)[]) {
    const [o, i] = shapes[role];
    layers[role] = sourceLinear(src, `${prefix}.${names[role]}`, o, i, bias);
  }
  return new GatedMLP(names, layers);
}

/** The default attention: grouped-query with the config's biases, q / k norms and clipping. */
export function buildGqaAttention({ config, src, prefix }: AttentionBuildContext): AttentionModule {
  const D = config.hiddenSize;
  const { numHeads: H, numKvHeads: Hkv, headDim: Dh, attention: a } = config;
  const q = sourceLinear(src, `${prefix}.q_proj`, H * Dh, D, a.qkvBias);
  const k = sourceLinear(src, `${prefix}.k_proj`, Hkv * Dh, D, a.qkvBias);
  const v = sourceLinear(src, `${prefix}.v_proj`, Hkv * Dh, D, a.qkvBias);
  const o = sourceLinear(src, `${prefix}.o_proj`, D, H * Dh, a.oBias);
  let norms: { q: RMSNorm; k: RMSNorm } | null = null;
  if (a.qkNorm !== 'none') {
    const [qn, kn] = a.qkNorm === 'head' ? [Dh, Dh] : [H * Dh, Hkv * Dh];
    norms = {
      q: new RMSNorm(src.get(`${prefix}.q_norm.weight`, [qn], { type: 'norm' }), config.rmsNormEps),
      k: new RMSNorm(src.get(`${prefix}.k_norm.weight`, [kn], { type: 'norm' }), config.rmsNormEps),
    };
  }
  return new GqaAttention(config, q, k, v, o, norms);
}

/** One MoE block of layer i: router row modules, stacked experts, optional shared expert. */
function buildMoeBlock(config: ModelConfig, layout: ArchitectureLayout, src: WeightSource, i: number, router: Router): SparseMoeBlock {
  const moe = config.moe!;
  const D = config.hiddenSize;
  const F = moe.expertIntermediateSize;
  const n = layout.names;
  const m = `model.layers.${i}.${n.moe}`;
  const rowModules = routerModules(config);
  const main = rowModules.find((r) => r.module === n.router);
  if (!main) throw new Error(`${config.architecture}: no router rows in '${n.router}'`);
  const gate = new Linear(
    src.get(`${m}.${n.router}.weight`, [main.rows, D], { type: 'router' }),
    main.bias ? src.get(`${m}.${n.router}.bias`, [main.rows], { type: 'router-bias', init: main.bias }) : null);
  const experts = Array.from({ length: moe.numExperts }, (_, e) => sourceGatedMLP(src, `${m}.${n.experts}.${e}`, n.expertProj, D, F, config.mlpBias));
  let shared = null;
  if (moe.sharedExpert) {
    if (!n.sharedExpert) throw new Error(`${config.architecture}: the config has a shared expert but the layout names none`);
    const mlp = sourceGatedMLP(src, `${m}.${n.sharedExpert}`, n.mlpProj, D, moe.sharedExpert.intermediateSize, config.mlpBias);
    const gateName = moe.sharedExpert.gated ? n.sharedExpertGate : null;
    if (moe.sharedExpert.gated && !gateName) throw new Error(`${config.architecture}: the shared expert is gated but the layout names no gate`);
    const sgate = gateName ? sourceLinear(src, `${m}.${gateName}`, 1, D) : null;
    shared = { name: n.sharedExpert, mlp, gateName, gate: sgate };
  }
  const block = new SparseMoeBlock(gate, experts, router, i, moe.routedScale, { routerName: n.router, expertsName: n.experts, shared });
  for (const extra of rowModules) {
    if (extra === main) continue;
    block.setGate2(new Linear(
      src.get(`${m}.${extra.module}.weight`, [extra.rows, D], { type: 'router', rowKind: 'null' }),
      extra.bias ? src.get(`${m}.${extra.module}.bias`, [extra.rows], { type: 'router-bias', init: extra.bias }) : null));
  }
  if (n.routerSelectionBias) {
    // a buffer (DeepSeek-V3 updates it by a rule, not by gradient): read with the router's rows, saved under its key
    const b = src.get(`${m}.${n.router}.${n.routerSelectionBias}`, [moe.numExperts], { type: 'router-bias', init: new Float32Array(moe.numExperts) });
    b.requiresGrad = false;
    block.setSelectionBias(`${n.router}.${n.routerSelectionBias}`, b);
  }
  block.checkRouter();
  return block;
}

export function buildCausalLM(config: ModelConfig, src: WeightSource, opts: BuildOptions = {}): CausalLM {
  const layout = layoutOf(config);
  const n = layout.names;
  const D = config.hiddenSize;
  const norm = (name: string): RMSNorm => new RMSNorm(src.get(`${name}.weight`, [D], { type: 'norm' }), config.rmsNormEps);
  const moeLayers = new Set(config.moe?.layers ?? []);
  const router = config.moe ? (opts.router ?? createDefaultRouter(config)) : null;
  const buildAttention = layout.buildAttention ?? buildGqaAttention;

  const layers: DecoderLayer[] = [];
  for (let i = 0; i < config.numLayers; i++) {
    const p = `model.layers.${i}`;
    const attn = buildAttention({ config, src, prefix: `${p}.self_attn`, layer: i });
    let ffn: GatedMLP | SparseMoeBlock;
    let ffnName: string;
    if (moeLayers.has(i)) {
      ffn = buildMoeBlock(config, layout, src, i, router!);
      ffnName = n.moe;
    } else {
      ffn = sourceGatedMLP(src, `${p}.${n.mlp}`, n.mlpProj, D, config.intermediateSize, config.mlpBias);
      ffnName = n.mlp;
    }
    layers.push(new DecoderLayer(i, norm(`${p}.input_layernorm`), attn, norm(`${p}.post_attention_layernorm`), ffn, ffnName));
  }
  const embed = new Embedding(src.get('model.embed_tokens.weight', [config.vocabSize, D], { type: 'embedding' }));
  const stack = new DecoderStack(embed, layers, norm('model.norm'));
  const head = config.tieWordEmbeddings ? null
    : new Linear(src.get('lm_head.weight', [config.vocabSize, D], { type: 'lm-head', fanIn: D }));
  const model = new CausalLM(config, stack, head);
  buildLayerExtensions(model, config, src);
  return model;
}
